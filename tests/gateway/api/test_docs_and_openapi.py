"""Swagger UI works offline and the OpenAPI document describes every route."""

from __future__ import annotations

import httpx

PROTOCOL_PATHS = {
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{model_name}",
    "/v2/models/{model_name}/versions/{model_version}",
    "/v2/models/{model_name}/ready",
    "/v2/models/{model_name}/versions/{model_version}/ready",
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}/infer",
    "/v2/repository/index",
}


async def test_swagger_ui_is_served_from_the_installed_package(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/openapi.json" in page.text
    assert "cdn" not in page.text.lower()
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.text
    assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200


async def test_openapi_lists_every_protocol_route_with_schemas(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]) >= PROTOCOL_PATHS
    infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    body = infer["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/InferenceRequest"}
    schemas = document["components"]["schemas"]
    assert {"InferenceRequest", "RequestInput", "RequestOutput", "InferenceResponse"} <= set(
        schemas
    )
    assert schemas["InferenceRequest"]["examples"]
    assert "FP32" in schemas["RequestInput"]["properties"]["datatype"]["enum"]
    ok = infer["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/InferenceResponse"}
    for status in ("400", "404", "413", "500", "503"):
        error = infer["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    operation_ids = [
        op["operationId"] for path in document["paths"].values() for op in path.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))
