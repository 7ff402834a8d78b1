//! The `/metrics` and `/health` server over real HTTP.

use metalayer_agent::telemetry::{Health, HealthReport, Metrics, TelemetryServer};

use crate::http::request;

#[tokio::test]
async fn metrics_and_health_are_served_on_one_port() {
    let metrics = Metrics::new("validator").unwrap();
    let signed =
        prometheus::IntGauge::new("latest_checkpoint_index", "Latest signed index.").unwrap();
    metrics.registry().register(Box::new(signed.clone())).unwrap();
    signed.set(17);
    let health = Health::default();
    let server = TelemetryServer::start("127.0.0.1:0".parse().unwrap(), metrics, health.clone())
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    assert_ne!(server.local_addr().port(), 0);

    let page = request(&addr, "GET", "/metrics").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("metalayer_latest_checkpoint_index{agent=\"validator\"} 17"),
        "{}",
        page.body
    );
    signed.set(18);
    let page = request(&addr, "GET", "/metrics").await.unwrap();
    assert!(
        page.body.contains("metalayer_latest_checkpoint_index{agent=\"validator\"} 18"),
        "{}",
        page.body
    );

    let page = request(&addr, "GET", "/health").await.unwrap();
    assert_eq!(page.status, 200);
    let report: HealthReport = serde_json::from_str(&page.body).unwrap();
    assert_eq!(report.status, "ok");
    assert_eq!(report.agent, "validator");
    assert_eq!(report.reason, None);

    health.set_unhealthy("reorg flag raised at index 3");
    let page = request(&addr, "GET", "/health").await.unwrap();
    assert_eq!(page.status, 503);
    let report: HealthReport = serde_json::from_str(&page.body).unwrap();
    assert_eq!(report.status, "unhealthy");
    assert_eq!(report.reason.as_deref(), Some("reorg flag raised at index 3"));

    assert_eq!(request(&addr, "GET", "/nope").await.unwrap().status, 404);

    server.shutdown().await.unwrap();
    assert!(request(&addr, "GET", "/health").await.is_err(), "still serving after shutdown");
}

#[tokio::test]
async fn a_taken_port_is_an_error_naming_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = TelemetryServer::start(addr, Metrics::new("relayer").unwrap(), Health::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
