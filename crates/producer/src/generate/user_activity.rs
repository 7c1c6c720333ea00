//! Users browsing a shop: each user keeps a device and a session id for the length of a
//! visit; a visit starts with `session_start`, moves through pages as a funnel (a
//! purchase only after something went into the cart) and ends with `session_end`.

use rand::Rng;
use serde::Serialize;

use super::{EntityId, GenRng, KeyChooser, hex_id, pick, weighted};

const USERS: usize = 200;
pub const EVENT_TYPES: &[&str] = &[
    "session_start",
    "page_view",
    "search",
    "click",
    "add_to_cart",
    "purchase",
    "session_end",
];
pub const DEVICES: &[&str] = &["desktop", "mobile", "tablet"];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserActivity {
    pub user_id: EntityId,
    /// Stable for the events of one visit.
    pub session_id: EntityId,
    pub event_type: &'static str,
    pub page: String,
    pub device: &'static str,
    pub country: &'static str,
}

struct User {
    id: EntityId,
    device: &'static str,
    country: &'static str,
    /// `None` between visits.
    session: Option<Session>,
}

struct Session {
    id: EntityId,
    cart_items: u32,
    page: String,
}

pub(super) struct ActivityStream {
    users: Vec<User>,
}

impl ActivityStream {
    pub(super) fn new(rng: &mut GenRng) -> Self {
        let users = (0..USERS)
            .map(|_| User {
                id: EntityId::new(format!("user-{:06}", rng.gen_range(1..1_000_000))),
                device: weighted(rng, &[("mobile", 58), ("desktop", 35), ("tablet", 7)]),
                country: pick(rng, &["US", "GB", "DE", "FR", "ES", "JP", "BR", "IN"]),
                session: None,
            })
            .collect();
        Self { users }
    }

    pub(super) fn next(&mut self, rng: &mut GenRng, keys: &mut KeyChooser) -> UserActivity {
        let i = keys.choose(rng, self.users.len());
        let user = &mut self.users[i];
        let (event_type, page, session_id) = match &mut user.session {
            None => {
                let id = EntityId::new(format!("sess-{}", hex_id(rng, 16)));
                let page = pick(rng, &["/", "/", "/products", "/search?q=shoes", "/deals"]);
                user.session = Some(Session {
                    id: id.clone(),
                    cart_items: 0,
                    page: page.to_owned(),
                });
                ("session_start", page.to_owned(), id)
            }
            Some(s) => {
                let id = s.id.clone();
                // About 1 in 15 events ends the visit.
                if rng.gen_bool(1.0 / 15.0) {
                    let page = std::mem::take(&mut s.page);
                    user.session = None;
                    ("session_end", page, id)
                } else {
                    let event = next_event(rng, s.cart_items);
                    let page = match event {
                        "page_view" | "click" => {
                            format!("/products/{}", rng.gen_range(100..1_000))
                        }
                        "search" => format!(
                            "/search?q={}",
                            pick(rng, &["shoes", "laptop", "coffee", "headphones", "tent"])
                        ),
                        "add_to_cart" => {
                            s.cart_items += 1;
                            "/cart".to_owned()
                        }
                        _ => {
                            s.cart_items = 0;
                            "/checkout/complete".to_owned()
                        }
                    };
                    s.page.clone_from(&page);
                    (event, page, id)
                }
            }
        };
        UserActivity {
            user_id: user.id.clone(),
            session_id,
            event_type,
            page,
            device: user.device,
            country: user.country,
        }
    }
}

fn next_event(rng: &mut GenRng, cart_items: u32) -> &'static str {
    if cart_items > 0 {
        weighted(
            rng,
            &[
                ("page_view", 45),
                ("click", 20),
                ("search", 10),
                ("add_to_cart", 10),
                ("purchase", 15),
            ],
        )
    } else {
        weighted(
            rng,
            &[
                ("page_view", 50),
                ("click", 25),
                ("search", 13),
                ("add_to_cart", 12),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn sessions_are_stable_and_purchases_follow_the_cart() {
        let mut rng = GenRng::seed_from_u64(9);
        let mut stream = ActivityStream::new(&mut rng);
        // user -> (session, items in cart)
        let mut open: HashMap<String, (String, u32)> = HashMap::new();
        for _ in 0..20_000 {
            let e = stream.next(&mut rng, &mut KeyChooser::default());
            let user = e.user_id.to_string();
            match e.event_type {
                "session_start" => {
                    assert!(!open.contains_key(&user));
                    open.insert(user, (e.session_id.to_string(), 0));
                }
                other => {
                    let (session, cart) = open.get_mut(&user).expect("event inside a visit");
                    assert_eq!(*session, e.session_id.as_str());
                    match other {
                        "add_to_cart" => *cart += 1,
                        "purchase" => {
                            assert!(*cart > 0, "purchase with an empty cart");
                            *cart = 0;
                        }
                        "session_end" => {
                            open.remove(&user);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
