//! `GET /api/schemas` and `GET /api/schemas/{data_type}`: the payload schemas, public,
//! the same as in the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use streamhub_model::DataType;

use crate::common::{Server, call};

#[tokio::test]
async fn every_data_type_has_its_schema() {
    let server = Server::start().await;
    let (status, list) = call(server.request(Method::GET, "/api/schemas", None)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), DataType::ALL.len(), "{list:?}");
    let doc = crate::openapi::fetch(&server).await;
    let one = &doc["paths"]["/api/schemas/{data_type}"]["get"];
    assert!(
        one["responses"]["200"]["content"]["application/schema+json"].is_object(),
        "{one}"
    );
    assert!(one.get("security").is_none(), "public: {one}");
    for (entry, d) in list.iter().zip(DataType::ALL) {
        assert_eq!(entry["data_type"], d.as_str());
        let url = entry["url"].as_str().expect("url");
        assert_eq!(url, format!("/api/schemas/{d}"));

        let res = server.request(Method::GET, url, None).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/schema+json"
        );
        let schema: Value = res.json().await.unwrap();
        assert_eq!(&schema, streamhub_model::schema::schema(d));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        // The OpenAPI document carries the same schema under its title.
        let title = entry["title"].as_str().expect("title");
        assert_eq!(schema["title"], title);
        assert_eq!(doc["components"]["schemas"][title], schema, "{title}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_data_type_is_a_json_404() {
    let server = Server::start().await;
    for path in [
        "/api/schemas/nope",
        "/api/schemas/Sensor",
        "/api/schemas/%00",
    ] {
        let (status, body) = call(server.request(Method::GET, path, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("unknown data type"),
            "{body}"
        );
    }
    server.stop().await;
}
