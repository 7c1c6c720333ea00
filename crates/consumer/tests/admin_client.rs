//! The admin client against the real admin service: sign-in, topics, subscriptions, and
//! the service's reasons for refusing, each one line.

mod common;

use common::{USER_PASSWORD, World, unique};
use streamhub_client::{Client as AdminClient, Error as AdminError, StatusCode};
use streamhub_consumer::{Session, SignIn};
use tokio_util::sync::CancellationToken;

async fn signed_in(world: &World, user: &str) -> AdminClient {
    let mut client = AdminClient::new(world.admin_url()).unwrap();
    client.login(user, USER_PASSWORD).await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_list_and_unsubscribe() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.active_topic(&topic, 2).await;
    world.add_user("erin").await;
    let client = signed_in(&world, "erin").await;

    assert_eq!(client.me().await.unwrap().username, "erin");
    let active = client.active_topics().await.unwrap();
    let t = active.iter().find(|t| t.topic_name == topic).unwrap();
    assert_eq!(t.partitions, 2);
    assert_eq!(t.data_type.as_str(), "sensor");

    client.subscribe(&topic).await.unwrap();
    let subs = client.subscriptions("erin").await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].topic_name, topic);
    // Twice is harmless.
    client.subscribe(&topic).await.unwrap();

    client.unsubscribe(&topic).await.unwrap();
    assert!(client.subscriptions("erin").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_carry_the_services_reason_in_one_line() {
    let world = World::start().await;
    world.add_user("frank").await;
    let pending = unique("pending");
    world.pending_topic(&pending, 1).await;
    let stopped = unique("stopped");
    let id = world.active_topic(&stopped, 1).await;
    world.deactivate(id).await;
    let client = signed_in(&world, "frank").await;

    for (topic, status) in [
        (pending.as_str(), StatusCode::CONFLICT),
        (stopped.as_str(), StatusCode::CONFLICT),
        ("never_requested", StatusCode::NOT_FOUND),
    ] {
        let err = client.subscribe(topic).await.unwrap_err();
        assert_eq!(err.status(), Some(status), "{topic}: {err}");
        let text = err.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        assert!(text.contains(topic) || text.contains("not"), "{text}");
        eprintln!("{topic}: {text}");
    }

    let mut wrong = AdminClient::new(world.admin_url()).unwrap();
    let err = wrong.login("frank", "not-the-password").await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_service_says_where_and_why() {
    let client = AdminClient::new("http://127.0.0.1:9".parse().unwrap())
        .unwrap()
        .with_token("t");
    let err = client.active_topics().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot reach the admin service at http://127.0.0.1:9/"),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert!(matches!(err, AdminError::Unreachable { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_signs_in_as_its_owner() {
    let world = World::start().await;
    world.add_user("gina").await;
    let client = signed_in(&world, "gina").await;
    let mut args = world.session("gina");
    args.password = None;
    args.user = None;
    args.token = client.token().map(streamhub_model::Secret::new);
    let session = Session::sign_in(&args, SignIn::Once, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(session.user, "gina");

    args.user = Some("someone_else".into());
    let err = Session::sign_in(&args, SignIn::Once, &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("belongs to 'gina'"), "{err}");
}
