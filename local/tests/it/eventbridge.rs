//! The AWS scheduler control through the real `aws-sdk-scheduler` client, against moto's
//! EventBridge Scheduler (its server address in QUBIT_TEST_AWS_ENDPOINT, started by
//! `make test`).

use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::DateTime;
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use qubit_core::schedule::{
    EventBridgeSchedule, ScheduleControl, ScheduleId, ScheduleState as State,
};

async fn client() -> Client {
    let endpoint = std::env::var("QUBIT_TEST_AWS_ENDPOINT")
        .expect("QUBIT_TEST_AWS_ENDPOINT names a moto server; `make test` starts one");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_scheduler::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    Client::new(&config)
}

/// Creates a schedule with every field set, in a group of its own.
async fn schedule_with_every_field(client: &Client, window: FlexibleTimeWindow) -> ScheduleId {
    let id = ScheduleId {
        name: format!("qubit-{}", uuid::Uuid::new_v4().simple()),
        group: format!("group-{}", uuid::Uuid::new_v4().simple()),
    };
    client
        .create_schedule_group()
        .name(&id.group)
        .send()
        .await
        .expect("a group");
    let target = Target::builder()
        .arn("arn:aws:lambda:us-east-1:123456789012:function:qubit-dispatch")
        .role_arn("arn:aws:iam::123456789012:role/qubit-scheduler")
        .input(r#"{"source": "qubit-schedule"}"#)
        .retry_policy(
            RetryPolicy::builder()
                .maximum_event_age_in_seconds(300)
                .maximum_retry_attempts(2)
                .build(),
        )
        .dead_letter_config(
            DeadLetterConfig::builder()
                .arn("arn:aws:sqs:us-east-1:123456789012:qubit-dlq")
                .build(),
        )
        .build()
        .expect("a target");
    client
        .create_schedule()
        .name(&id.name)
        .group_name(&id.group)
        .schedule_expression("rate(2 minutes)")
        .schedule_expression_timezone("Europe/Istanbul")
        .description("every field set")
        .start_date(DateTime::from_secs(4_102_444_800))
        .end_date(DateTime::from_secs(4_133_980_800))
        .kms_key_arn("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        .flexible_time_window(window)
        .target(target)
        .state(ScheduleState::Enabled)
        .send()
        .await
        .expect("a schedule");
    id
}

async fn read(client: &Client, id: &ScheduleId) -> GetScheduleOutput {
    client
        .get_schedule()
        .name(&id.name)
        .group_name(&id.group)
        .send()
        .await
        .expect("the schedule exists")
}

/// Everything but the state and the modification time, for comparison.
fn all_but_state(schedule: &GetScheduleOutput) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        schedule.name(),
        schedule.group_name(),
        schedule.schedule_expression(),
        schedule.schedule_expression_timezone(),
        schedule.description(),
        schedule.start_date(),
        schedule.end_date(),
        schedule.kms_key_arn(),
        schedule.flexible_time_window(),
        schedule.target(),
    )
}

async fn stop_start_and_compare(window: FlexibleTimeWindow) {
    let client = client().await;
    let id = schedule_with_every_field(&client, window).await;
    let original = read(&client, &id).await;
    let control = EventBridgeSchedule::new(client.clone(), id.clone());

    for start in [false, false, true, false] {
        let (answer, wanted) = if start {
            (control.start().await, ScheduleState::Enabled)
        } else {
            (control.stop().await, ScheduleState::Disabled)
        };

        let answer = answer.expect("the control answers");
        let now = read(&client, &id).await;
        assert_eq!(now.state(), Some(&wanted));
        let expected = if wanted == ScheduleState::Enabled {
            State::Running
        } else {
            State::Stopped
        };
        assert_eq!(answer, expected);
        assert_eq!(all_but_state(&now), all_but_state(&original));
    }
    assert_eq!(control.state().await.expect("readable"), State::Stopped);
}

#[tokio::test]
async fn start_and_stop_change_only_the_state_of_a_schedule_with_a_flexible_window() {
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Flexible)
        .maximum_window_in_minutes(5)
        .build()
        .expect("a window");
    stop_start_and_compare(window).await;
}

#[tokio::test]
async fn start_and_stop_change_only_the_state_of_a_schedule_without_a_window() {
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .expect("a window");
    stop_start_and_compare(window).await;
}

#[tokio::test]
async fn a_missing_schedule_is_reported_as_misconfigured() {
    let control = EventBridgeSchedule::new(
        client().await,
        ScheduleId {
            name: "no-such-schedule".to_owned(),
            group: "default".to_owned(),
        },
    );

    let err = control.start().await.expect_err("nothing to start");

    assert!(
        matches!(err, qubit_core::schedule::ScheduleError::Misconfigured(_)),
        "{err}"
    );
}
