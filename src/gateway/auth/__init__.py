"""JWT bearer auth: keys, key ring, JWKS, the authenticator, principals, scopes, minting."""
