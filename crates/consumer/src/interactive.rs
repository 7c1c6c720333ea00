//! The interactive consumer: the seed's menu, and the live message view.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::Consumer;
use streamhub_model::api::ActiveTopic;
use tokio_util::sync::CancellationToken;

use crate::kafka::{self, Progress};
use crate::menu;
use crate::read::commit_now;
use crate::render::{Format, Palette, Renderer};
use crate::session::{Session, SessionArgs, SignIn};
use streamhub_client::Error as AdminError;

/// How often the subscriptions are read again while consuming.
const SUBSCRIPTION_REFRESH: Duration = Duration::from_secs(2);

const MENU: [&str; 6] = [
    "View available topics",
    "View my subscriptions",
    "Subscribe to a topic",
    "Unsubscribe from a topic",
    "Start consumer",
    "Exit",
];

pub async fn run(args: SessionArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let p = Palette::for_stdout();
    let mut session = Session::sign_in(&args, SignIn::Patiently, &shutdown).await?;
    println!(
        "{} signed in as {} at {} · Kafka {}",
        p.bold("streamhub consumer"),
        p.cyan(&session.user),
        session.client.base_url(),
        args.kafka.bootstrap_servers
    );
    let items: Vec<String> = MENU.iter().map(|s| (*s).to_owned()).collect();
    loop {
        println!();
        let Some(choice) = pick("Main menu", items.clone(), p, &shutdown).await? else {
            break;
        };
        let outcome = match choice {
            0 => show_topics(&mut session, p).await,
            1 => show_subscriptions(&mut session, p).await,
            2 => subscribe(&mut session, p, &shutdown).await,
            3 => unsubscribe(&mut session, p, &shutdown).await,
            4 => consume(&mut session, &args, p, &shutdown).await,
            _ => break,
        };
        if let Err(e) = outcome {
            // Back to the menu: the person decides whether to try again.
            println!("{}", p.red(&format!("✘ {e:#}")));
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    println!("Goodbye.");
    Ok(())
}

/// Shows a selection list on a blocking thread, ending it if `shutdown` fires.
async fn pick(
    prompt: &str,
    items: Vec<String>,
    p: Palette,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<usize>> {
    let cancel = Arc::new(AtomicBool::new(false));
    let task = {
        let cancel = cancel.clone();
        let prompt = prompt.to_owned();
        tokio::task::spawn_blocking(move || menu::select(&prompt, &items, p, &cancel))
    };
    let _stop = CancelOnDrop(cancel.clone());
    tokio::select! {
        r = task => Ok(r.context("the menu task failed")?.context("cannot use the terminal")?),
        _ = shutdown.cancelled() => {
            cancel.store(true, Ordering::SeqCst);
            Ok(None)
        }
    }
}

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn active_topics(session: &mut Session) -> Result<Vec<ActiveTopic>, AdminError> {
    session.call(async |c| c.active_topics().await).await
}

async fn my_topics(session: &mut Session) -> Result<BTreeSet<String>, AdminError> {
    let user = session.user.clone();
    let subs = session.call(async |c| c.subscriptions(&user).await).await?;
    Ok(subs.into_iter().map(|s| s.topic_name).collect())
}

fn topic_line(t: &ActiveTopic, p: Palette) -> String {
    let partitions = if t.partitions == 1 {
        "1 partition".to_owned()
    } else {
        format!("{} partitions", t.partitions)
    };
    let description = if t.description.is_empty() {
        String::new()
    } else {
        format!(" — {}", t.description)
    };
    format!(
        "{}  {}{}",
        p.cyan(&t.topic_name),
        p.dim(&format!("({} · {partitions})", t.data_type)),
        description
    )
}

async fn show_topics(session: &mut Session, p: Palette) -> anyhow::Result<()> {
    let topics = active_topics(session).await?;
    let mine = my_topics(session).await.unwrap_or_default();
    if topics.is_empty() {
        println!(
            "No active topics yet: a topic becomes active once an admin approves it and the producer creates it."
        );
        return Ok(());
    }
    println!(
        "{}",
        p.bold(&format!("Available topics ({}):", topics.len()))
    );
    for (i, t) in topics.iter().enumerate() {
        let mark = if mine.contains(&t.topic_name) {
            p.green(" ✔ subscribed")
        } else {
            String::new()
        };
        println!("  {:>2}. {}{mark}", i + 1, topic_line(t, p));
    }
    Ok(())
}

async fn show_subscriptions(session: &mut Session, p: Palette) -> anyhow::Result<()> {
    let mine = my_topics(session).await?;
    if mine.is_empty() {
        println!("You have no subscriptions; choose 3 to subscribe to a topic.");
        return Ok(());
    }
    let active: Vec<ActiveTopic> = active_topics(session).await.unwrap_or_default();
    println!("{}", p.bold(&format!("My subscriptions ({}):", mine.len())));
    for (i, name) in mine.iter().enumerate() {
        match active.iter().find(|t| &t.topic_name == name) {
            Some(t) => println!("  {:>2}. {}", i + 1, topic_line(t, p)),
            None => println!(
                "  {:>2}. {}  {}",
                i + 1,
                p.cyan(name),
                p.yellow("(not active now)")
            ),
        }
    }
    Ok(())
}

async fn subscribe(
    session: &mut Session,
    p: Palette,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mine = my_topics(session).await?;
    let candidates: Vec<ActiveTopic> = active_topics(session)
        .await?
        .into_iter()
        .filter(|t| !mine.contains(&t.topic_name))
        .collect();
    if candidates.is_empty() {
        println!("Nothing to subscribe to: you are subscribed to every active topic.");
        return Ok(());
    }
    let labels = candidates
        .iter()
        .map(|t| topic_line(t, Palette::PLAIN))
        .collect();
    let Some(i) = pick("Subscribe to which topic?", labels, p, shutdown).await? else {
        return Ok(());
    };
    let topic = candidates[i].topic_name.clone();
    match session.call(async |c| c.subscribe(&topic).await).await {
        Ok(_) => println!("{} Subscribed to {}", p.green("✔"), p.cyan(&topic)),
        Err(e) => println!("{} cannot subscribe to {topic}: {e}", p.red("✘")),
    }
    Ok(())
}

async fn unsubscribe(
    session: &mut Session,
    p: Palette,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mine: Vec<String> = my_topics(session).await?.into_iter().collect();
    if mine.is_empty() {
        println!("You have no subscriptions.");
        return Ok(());
    }
    let Some(i) = pick("Unsubscribe from which topic?", mine.clone(), p, shutdown).await? else {
        return Ok(());
    };
    let topic = mine[i].clone();
    match session.call(async |c| c.unsubscribe(&topic).await).await {
        Ok(_) => println!("{} Unsubscribed from {}", p.green("✔"), p.cyan(&topic)),
        Err(e) => println!("{} cannot unsubscribe from {topic}: {e}", p.red("✘")),
    }
    Ok(())
}

fn names(topics: &BTreeSet<String>) -> String {
    topics.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Reads every subscribed topic in the user's group until Ctrl-C, following subscription
/// changes; each offset is stored once its message is on the screen, and committed on the
/// way out.
async fn consume(
    session: &mut Session,
    args: &SessionArgs,
    p: Palette,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut topics = my_topics(session).await?;
    if topics.is_empty() {
        println!("You have no subscriptions yet; choose 3 to subscribe to a topic first.");
        return Ok(());
    }
    let group = streamhub_model::consumer_group_of(&session.user);
    let consumer = kafka::consumer(
        &kafka::with_read_ahead(args.kafka.config()),
        &group,
        Progress::Commit,
    )?;
    let list: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&list)
        .context("cannot subscribe to the topics in Kafka")?;
    println!(
        "{} {} as group {} — {}",
        p.bold("Consuming"),
        p.cyan(&names(&topics)),
        group,
        p.dim("press Ctrl-C to return to the menu")
    );

    let mut renderer = Renderer::new(Format::Pretty, p);
    let mut refresh = tokio::time::interval(SUBSCRIPTION_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut admin_down = false;
    let mut told_unassigned = false;
    let started = std::time::Instant::now();
    let mut kafka_errors = 0u32;
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = shutdown.cancelled() => break,
            _ = refresh.tick() => {
                if !told_unassigned
                    && started.elapsed() > Duration::from_secs(6)
                    && renderer.shown == 0
                    && !topics.is_empty()
                    && consumer.assignment().is_ok_and(|a| a.count() == 0)
                {
                    println!("{}", p.dim("Waiting for the group to assign partitions (a consumer of this group that stopped abruptly holds them until its session expires, 45 s by default)…"));
                    told_unassigned = true;
                }
                match my_topics(session).await {
                    Ok(now) => {
                        if admin_down {
                            println!("{}", p.green("The admin service answers again."));
                            admin_down = false;
                        }
                        if now != topics {
                            announce_change(&topics, &now, p);
                            topics = now;
                            if topics.is_empty() {
                                consumer.unsubscribe();
                                println!("{}", p.yellow("No subscriptions left: waiting for one (Ctrl-C for the menu)."));
                            } else {
                                let list: Vec<&str> = topics.iter().map(String::as_str).collect();
                                consumer.subscribe(&list).context("cannot change the Kafka subscription")?;
                            }
                        }
                    }
                    Err(e) if !admin_down => {
                        println!("{}", p.yellow(&format!("⚠ {e}; still reading {} and retrying", names(&topics))));
                        admin_down = true;
                    }
                    Err(_) => {}
                }
            }
            next = consumer.recv() => match next {
                Ok(message) => {
                    let record = kafka::record_of(&message);
                    // Shown first, then stored: a crash between the two repeats the
                    // message, never loses it.
                    renderer.write(&mut stdout, &mut stderr, &record).context("cannot write to the terminal")?;
                    stdout.flush().context("cannot write to the terminal")?;
                    consumer.store_offset_from_message(&message).context("cannot store the consumed offset")?;
                    kafka_errors = 0;
                }
                Err(e) => {
                    kafka_errors += 1;
                    if kafka_errors == 1 || kafka_errors.is_multiple_of(50) {
                        println!("{}", p.yellow(&format!("⚠ Kafka: {e}; still trying")));
                    }
                }
            },
        }
    }
    let committed = tokio::task::spawn_blocking(move || {
        let r = commit_now(&consumer);
        drop(consumer);
        r
    })
    .await
    .context("the commit task failed")?;
    println!();
    match committed {
        Ok(()) => println!(
            "{} Stopped after {} message{}; position committed for group {group}.",
            p.green("✔"),
            renderer.shown,
            if renderer.shown == 1 { "" } else { "s" }
        ),
        Err(e) => println!(
            "{} Stopped after {} messages, but {e:#}: the next start may repeat some.",
            p.yellow("⚠"),
            renderer.shown
        ),
    }
    Ok(())
}

fn announce_change(before: &BTreeSet<String>, now: &BTreeSet<String>, p: Palette) {
    let added: BTreeSet<String> = now.difference(before).cloned().collect();
    let removed: BTreeSet<String> = before.difference(now).cloned().collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("+{}", names(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("-{}", names(&removed)));
    }
    println!(
        "{} subscriptions changed ({}): now reading {}",
        p.magenta("↻"),
        parts.join(" "),
        if now.is_empty() {
            "nothing".to_owned()
        } else {
            names(now)
        }
    );
}
