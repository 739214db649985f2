//! Synthetic shop generator: realistic, seeded customer/order/event data for `demo`, tests and benchmarks.
//!
//! Segments are only as convincing as the data they run on, so the generator reproduces the shapes a real
//! shop has: about two years of history before `as_of`, power-law order counts (half the customers never
//! order, many order once, a few order dozens of times), Nov/Dec peaks, first-time visitors, cart
//! abandoners, lapsed buyers, VIPs, discount hunters, free-shipping users, consent flags, messy emails and
//! phones in national and international formats.
//!
//! It streams: [`ShopGenerator::next_chunk`] hands out a few thousand customers with their orders and
//! events at a time, so a million customers (≈3M orders, ≈6M events) never sit in memory at once. Every
//! customer draws from its own ChaCha stream keyed by `(seed, index)`, so the output is identical for a seed
//! whatever the chunk sizes, and ids (`c000001`, `o00000001`, `e000000001`) are assigned in order.

use chrono::{DateTime, Datelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::model::{Contact, Customer, Event, Order};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const MINUTE: i64 = 60;
/// How far back the shop's history goes.
const HISTORY: i64 = 730 * DAY;

/// One slice of the synthetic shop: some customers with all of their orders and events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShopChunk {
    /// The customers of this chunk, in id order.
    pub customers: Vec<Customer>,
    /// Every order of those customers.
    pub orders: Vec<Order>,
    /// Every event of those customers.
    pub events: Vec<Event>,
}

/// A deterministic, streaming generator of a synthetic shop with `customers` customers.
#[derive(Debug, Clone)]
pub struct ShopGenerator {
    total: u64,
    seed: u64,
    as_of: i64,
    next_customer: u64,
    next_order: u64,
    next_event: u64,
}

impl ShopGenerator {
    /// A generator of `customers` customers whose history ends at `as_of` (truncated to whole seconds, the
    /// store's precision), reproducible from `seed`.
    pub fn new(customers: u64, seed: u64, as_of: DateTime<Utc>) -> ShopGenerator {
        ShopGenerator {
            total: customers,
            seed,
            as_of: as_of.timestamp(),
            next_customer: 0,
            next_order: 0,
            next_event: 0,
        }
    }

    /// How many customers are still to come, so callers can report progress.
    pub fn remaining(&self) -> u64 {
        self.total - self.next_customer
    }

    /// The next chunk of at most `max_customers` customers (at least one), or `None` when all are out.
    pub fn next_chunk(&mut self, max_customers: usize) -> Option<ShopChunk> {
        let n = self.remaining().min(max_customers.max(1) as u64);
        if n == 0 {
            return None;
        }
        let mut chunk = ShopChunk {
            customers: Vec::with_capacity(n as usize),
            orders: Vec::with_capacity(n as usize * 4),
            events: Vec::with_capacity(n as usize * 7),
        };
        for _ in 0..n {
            let index = self.next_customer;
            self.next_customer += 1;
            self.customer(index, &mut chunk);
        }
        Some(chunk)
    }

    /// Generates customer number `index` (0-based) with its orders and events into `out`.
    fn customer(&mut self, index: u64, out: &mut ShopChunk) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        let as_of = self.as_of;
        let id = format!("c{:06}", index + 1);

        let country = pick_weighted(&mut rng, COUNTRIES, |c| c.weight);
        let first = pick(&mut rng, FIRST_NAMES);
        let last = pick(&mut rng, LAST_NAMES);

        // Who is this customer? Decide the persona first, then fit the timeline around it.
        let buyer = rng.gen_bool(0.5);
        let n_orders = if buyer { pareto_count(&mut rng) } else { 0 };
        let lapsed = buyer && rng.gen_bool(0.2);
        let abandoner = rng.gen_bool(0.08);
        let first_time_visitor = !buyer && rng.gen_bool(0.4);
        let vip = n_orders >= 4 && rng.gen_bool(0.3);
        let discount_share = if buyer && rng.gen_bool(0.12) {
            0.85
        } else {
            0.1
        };
        let free_ship_share = if buyer && rng.gen_bool(0.15) {
            0.9
        } else {
            0.2
        };

        // Sign-up date: more recent sign-ups than old ones (the shop grows); heavy buyers have been around
        // long enough to place their orders, lapsed buyers more than half a year.
        let mut min_age = if buyer {
            DAY + (n_orders as i64).min(140) * 5 * DAY
        } else {
            HOUR
        };
        if lapsed {
            min_age = min_age.max(200 * DAY) + (n_orders as i64).min(60) * DAY;
        }
        if abandoner && buyer {
            min_age = min_age.max(10 * DAY);
        }
        let min_age = min_age.min(HISTORY - DAY);
        let u: f64 = rng.gen();
        let age = min_age + ((HISTORY - min_age) as f64 * u.powf(1.4)) as i64;
        let created_at = as_of - age;

        // Orders.
        let order_start = created_at + HOUR;
        let mut order_end = as_of;
        if lapsed {
            order_end = as_of - 181 * DAY;
        }
        if abandoner {
            order_end = order_end.min(as_of - 8 * DAY);
        }
        let order_end = order_end.max(order_start);
        let mut order_times: Vec<i64> = (0..n_orders)
            .map(|_| seasonal_time(&mut rng, order_start, order_end))
            .collect();
        order_times.sort_unstable();
        let currency = country.currency;
        let mut events = Vec::new();
        for (i, &placed) in order_times.iter().enumerate() {
            let mut total = (3.7 + 0.7 * normal(&mut rng)).exp().clamp(5.0, 900.0);
            if vip {
                total *= rng.gen_range(4.0..10.0);
            }
            let total = (total * 100.0).round() / 100.0;
            let discount_code = if rng.gen_bool(discount_share) {
                Some(discount_code(&mut rng, i == 0, placed).to_string())
            } else {
                None
            };
            let free_shipping =
                rng.gen_bool(free_ship_share) || (total >= 150.0 && rng.gen_bool(0.5));
            self.next_order += 1;
            out.orders.push(Order {
                id: format!("o{:08}", self.next_order),
                customer_id: id.clone(),
                placed_at: to_time(placed),
                total,
                currency: Some(currency.to_string()),
                discount_code,
                free_shipping,
            });
            // The path to the order, some of it tracked.
            let cart_value = json!(total);
            let sku = sku(&mut rng);
            if rng.gen_bool(0.3) {
                let t = before(&mut rng, placed, created_at, 30 * MINUTE, 180 * MINUTE);
                events.push(("visit", t, json!({ "source": pick(&mut rng, SOURCES) })));
            }
            if rng.gen_bool(0.2) {
                let t = before(&mut rng, placed, created_at, 10 * MINUTE, 30 * MINUTE);
                events.push((
                    "product_view",
                    t,
                    json!({ "sku": sku, "category": pick(&mut rng, CATEGORIES) }),
                ));
            }
            if rng.gen_bool(0.25) {
                let t = before(&mut rng, placed, created_at, 5 * MINUTE, 10 * MINUTE);
                events.push((
                    "add_to_cart",
                    t,
                    json!({ "sku": sku, "quantity": rng.gen_range(1..=3) }),
                ));
            }
            if rng.gen_bool(0.15) {
                let t = before(&mut rng, placed, created_at, MINUTE, 5 * MINUTE);
                events.push(("checkout_started", t, json!({ "cart_value": cart_value })));
            }
        }

        // Browsing outside of orders.
        if first_time_visitor {
            let start = created_at.max(as_of - 30 * DAY);
            for _ in 0..rng.gen_range(1..=4) {
                let t = rng.gen_range(start..=as_of);
                events.push(("visit", t, json!({ "source": pick(&mut rng, SOURCES) })));
                if rng.gen_bool(0.6) {
                    let v = (t + rng.gen_range(MINUTE..10 * MINUTE)).min(as_of);
                    events.push((
                        "product_view",
                        v,
                        json!({ "sku": sku(&mut rng), "category": pick(&mut rng, CATEGORIES) }),
                    ));
                }
            }
        } else {
            for _ in 0..rng.gen_range(0..=2) {
                let t = rng.gen_range(created_at..=as_of);
                events.push(("visit", t, json!({ "source": pick(&mut rng, SOURCES) })));
                if rng.gen_bool(0.3) {
                    let v = (t + rng.gen_range(MINUTE..10 * MINUTE)).min(as_of);
                    events.push((
                        "product_view",
                        v,
                        json!({ "sku": sku(&mut rng), "category": pick(&mut rng, CATEGORIES) }),
                    ));
                }
            }
        }
        if abandoner {
            let start = created_at.max(as_of - 7 * DAY);
            let sku = sku(&mut rng);
            let t = rng.gen_range(start..=as_of);
            events.push(("add_to_cart", t, json!({ "sku": sku, "quantity": 1 })));
            if rng.gen_bool(0.5) {
                let c = (t + rng.gen_range(MINUTE..20 * MINUTE)).min(as_of);
                events.push((
                    "checkout_started",
                    c,
                    json!({ "cart_value": (rng.gen_range(20.0..300.0_f64) * 100.0).round() / 100.0 }),
                ));
            }
        }

        // Consent and contact details.
        let consent_ads = rng.gen_bool(0.7);
        let consent_email = rng.gen_bool(0.6);
        let email = email(&mut rng, first, last);
        if consent_email && email.is_some() {
            for _ in 0..rng.gen_range(0..=3) {
                let t = rng.gen_range(created_at..=as_of);
                let campaign = pick(&mut rng, CAMPAIGNS);
                events.push(("email_open", t, json!({ "campaign": campaign })));
                if rng.gen_bool(0.3) {
                    let c = (t + rng.gen_range(MINUTE..HOUR)).min(as_of);
                    events.push(("email_click", c, json!({ "campaign": campaign })));
                }
            }
        }
        events.sort_by_key(|e| e.1);
        for (kind, t, properties) in events {
            self.next_event += 1;
            out.events.push(Event {
                id: Some(format!("e{:09}", self.next_event)),
                customer_id: id.clone(),
                kind: kind.to_string(),
                occurred_at: to_time(t),
                properties: Some(properties),
            });
        }

        let (city, postal_code) = city(&mut rng, country);
        let birth_date = if rng.gen_bool(0.75) {
            let years = rng.gen_range(18..80);
            let days = years * 365 + rng.gen_range(0..365);
            Some(to_time(as_of - days * DAY).date_naive())
        } else {
            None
        };
        let gender = match rng.gen_range(0..100) {
            0..=47 => Some("female"),
            48..=93 => Some("male"),
            94..=95 => Some("non-binary"),
            _ => None,
        };
        out.customers.push(Customer {
            contact: Contact {
                customer_id: id,
                email,
                phone: phone(&mut rng, country),
                first_name: Some(first.to_string()),
                last_name: Some(last.to_string()),
                country: Some(country.code.to_string()),
                city: Some(city.to_string()),
                region: region_of(country.code, city).map(str::to_string),
                postal_code: Some(postal_code),
                birth_date,
                gender: gender.map(str::to_string),
            },
            created_at: Some(to_time(created_at)),
            consent_ads,
            consent_email,
        });
    }
}

/// Seconds since the epoch to a UTC time; out-of-range values (impossible for sane `as_of`) clamp to the
/// epoch rather than panic.
fn to_time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// A power-law order count for a buyer: ≈48% one order, most of the rest 2-10, ≈6% twenty or more,
/// mean ≈6 (so ≈3 over all customers, half of whom never order).
fn pareto_count(rng: &mut ChaCha8Rng) -> u32 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    (u.powf(-1.0 / 0.95)).min(150.0).floor().max(1.0) as u32
}

/// A standard normal draw (Box-Muller), for log-normal order totals.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How busy the shop is in a month, relative to the peak (Black Friday to Christmas).
fn season_weight(t: i64) -> f64 {
    let d = to_time(t);
    match (d.month(), d.day()) {
        (11, 20..) => 1.0,
        (11, _) => 0.75,
        (12, ..=22) => 0.95,
        (12, _) => 0.45,
        (1, _) => 0.35,
        _ => 0.45,
    }
}

/// A time in `[start, end]` following the seasonal curve (rejection sampling; short windows are uniform).
fn seasonal_time(rng: &mut ChaCha8Rng, start: i64, end: i64) -> i64 {
    if end <= start {
        return start;
    }
    let mut t = start;
    for _ in 0..16 {
        t = rng.gen_range(start..=end);
        if end - start < 20 * DAY || rng.gen_bool(season_weight(t)) {
            return t;
        }
    }
    t
}

/// A time between `min` and `max` seconds before `t`, never before `floor` (the sign-up).
fn before(rng: &mut ChaCha8Rng, t: i64, floor: i64, min: i64, max: i64) -> i64 {
    (t - rng.gen_range(min..=max)).max(floor)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

fn pick_weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut r = rng.gen_range(0..total.max(1));
    for item in items {
        let w = weight(item);
        if r < w {
            return item;
        }
        r -= w;
    }
    &items[items.len() - 1]
}

fn sku(rng: &mut ChaCha8Rng) -> String {
    format!("SKU-{:04}", rng.gen_range(1..2000))
}

fn discount_code(rng: &mut ChaCha8Rng, first_order: bool, placed: i64) -> &'static str {
    let d = to_time(placed);
    if d.month() == 11 && d.day() >= 20 {
        "BLACKFRIDAY30"
    } else if first_order && rng.gen_bool(0.5) {
        "WELCOME10"
    } else {
        pick(rng, DISCOUNT_CODES)
    }
}

/// An email as shops really hold them: mostly fine, some mixed case or padded, ≈2% malformed, ≈1% absent.
fn email(rng: &mut ChaCha8Rng, first: &str, last: &str) -> Option<String> {
    let domain = pick(rng, EMAIL_DOMAINS);
    // Names like "de Vries" or "O'Brien" lose their spaces and apostrophes in an address.
    let first: String = first.chars().filter(|c| c.is_alphanumeric()).collect();
    let last: String = last.chars().filter(|c| c.is_alphanumeric()).collect();
    let initial: String = first.chars().take(1).collect();
    let local = match rng.gen_range(0..4) {
        0 => format!("{first}.{last}"),
        1 => format!("{initial}{last}"),
        2 => format!("{first}.{last}{}", rng.gen_range(1..100)),
        _ => format!("{first}_{last}{}", rng.gen_range(1950..2010)),
    }
    .to_lowercase();
    let roll = rng.gen_range(0..1000);
    Some(match roll {
        0..=9 => return None,
        10..=13 => format!("{local}.{domain}"),
        14..=17 => format!("{local}@"),
        18..=21 => format!("{local}@@{domain}"),
        22..=25 => format!("{} {}@{domain}", first.to_lowercase(), last.to_lowercase()),
        26..=29 => format!("{local}@{}", domain.split('.').next().unwrap_or(domain)),
        30..=109 => format!("{first}.{last}@{}", domain.to_uppercase()),
        110..=129 => format!(" {local}@{domain} "),
        _ => format!("{local}@{domain}"),
    })
}

/// A phone in one of the formats customers type: E.164, spaced international, `00` prefix or national.
fn phone(rng: &mut ChaCha8Rng, country: &Country) -> Option<String> {
    if rng.gen_bool(0.15) {
        return None;
    }
    let nsn: String = (0..country.nsn_len)
        .map(|i| {
            let d = if i == 0 {
                rng.gen_range(2..10)
            } else {
                rng.gen_range(0..10)
            };
            char::from(b'0' + d as u8)
        })
        .collect();
    let cc = country.calling_code;
    let nanp = cc == "1";
    Some(match rng.gen_range(0..10) {
        0..=2 => format!("+{cc}{nsn}"),
        3..=4 => format!("+{cc} {}", group(&nsn)),
        5 => format!("00{cc} {}", group(&nsn)),
        _ if nanp => match rng.gen_range(0..3) {
            0 => format!("({}) {}-{}", &nsn[..3], &nsn[3..6], &nsn[6..]),
            1 => format!("{}-{}-{}", &nsn[..3], &nsn[3..6], &nsn[6..]),
            _ => format!("1 {}", group(&nsn)),
        },
        _ => format!("0{}", group(&nsn)),
    })
}

/// Splits a national number into space-separated groups of three (last group may be longer).
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + 4);
    let n = digits.len();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 3 == 0 && n - i > 1 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The state or province of a generated US or Canadian city, as shops store it (two-letter code); other
/// countries' shops rarely fill it, so they get none.
fn region_of(country: &str, city: &str) -> Option<&'static str> {
    Some(match (country, city) {
        ("US", "New York") => "NY",
        ("US", "Los Angeles") => "CA",
        ("US", "Chicago") => "IL",
        ("US", "Houston") | ("US", "Austin") => "TX",
        ("US", "Seattle") => "WA",
        ("US", "Denver") => "CO",
        ("US", "Boston") => "MA",
        ("CA", "Toronto") | ("CA", "Ottawa") => "ON",
        ("CA", "Montréal") => "QC",
        ("CA", "Vancouver") => "BC",
        ("CA", "Calgary") => "AB",
        _ => return None,
    })
}

/// A city of the country and a postal code in that country's format.
fn city(rng: &mut ChaCha8Rng, country: &Country) -> (&'static str, String) {
    let city = pick(rng, country.cities);
    let postal = match country.code {
        "US" | "DE" | "FR" | "ES" | "IT" => digits(rng, 5),
        "AU" | "DK" | "NO" | "BE" | "AT" | "CH" => digits(rng, 4),
        "SE" => {
            let d = digits(rng, 5);
            format!("{} {}", &d[..3], &d[3..])
        }
        "NL" => format!("{} {}", digits(rng, 4), letters(rng, 2)),
        "CA" => {
            let l = letters(rng, 3);
            let d = digits(rng, 3);
            let b = l.as_bytes();
            let d2 = d.as_bytes();
            format!(
                "{}{}{} {}{}{}",
                char::from(b[0]),
                char::from(d2[0]),
                char::from(b[1]),
                char::from(d2[1]),
                char::from(b[2]),
                char::from(d2[2])
            )
        }
        "GB" => format!(
            "{}{} {}{}",
            letters(rng, 2),
            rng.gen_range(1..20),
            rng.gen_range(1..10),
            letters(rng, 2)
        ),
        "IE" => format!("D{:02} {}", rng.gen_range(1..25), letters(rng, 4)),
        _ => digits(rng, 5),
    };
    (city, postal)
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn letters(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
        .collect()
}

/// A country the shop sells to: weight in the customer base, currency and phone/postal conventions.
struct Country {
    code: &'static str,
    weight: u32,
    currency: &'static str,
    calling_code: &'static str,
    nsn_len: usize,
    cities: &'static [&'static str],
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        weight: 34,
        currency: "USD",
        calling_code: "1",
        nsn_len: 10,
        cities: &[
            "New York",
            "Los Angeles",
            "Chicago",
            "Houston",
            "Seattle",
            "Austin",
            "Denver",
            "Boston",
        ],
    },
    Country {
        code: "GB",
        weight: 12,
        currency: "GBP",
        calling_code: "44",
        nsn_len: 10,
        cities: &[
            "London",
            "Manchester",
            "Bristol",
            "Leeds",
            "Glasgow",
            "Edinburgh",
        ],
    },
    Country {
        code: "DE",
        weight: 10,
        currency: "EUR",
        calling_code: "49",
        nsn_len: 11,
        cities: &[
            "Berlin",
            "Hamburg",
            "München",
            "Köln",
            "Frankfurt am Main",
            "Leipzig",
        ],
    },
    Country {
        code: "CA",
        weight: 8,
        currency: "CAD",
        calling_code: "1",
        nsn_len: 10,
        cities: &["Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa"],
    },
    Country {
        code: "FR",
        weight: 8,
        currency: "EUR",
        calling_code: "33",
        nsn_len: 9,
        cities: &[
            "Paris",
            "Lyon",
            "Marseille",
            "Toulouse",
            "Bordeaux",
            "Lille",
        ],
    },
    Country {
        code: "AU",
        weight: 6,
        currency: "AUD",
        calling_code: "61",
        nsn_len: 9,
        cities: &["Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"],
    },
    Country {
        code: "NL",
        weight: 5,
        currency: "EUR",
        calling_code: "31",
        nsn_len: 9,
        cities: &["Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"],
    },
    Country {
        code: "ES",
        weight: 5,
        currency: "EUR",
        calling_code: "34",
        nsn_len: 9,
        cities: &["Madrid", "Barcelona", "Valencia", "Sevilla", "Málaga"],
    },
    Country {
        code: "IT",
        weight: 5,
        currency: "EUR",
        calling_code: "39",
        nsn_len: 10,
        cities: &["Roma", "Milano", "Napoli", "Torino", "Bologna"],
    },
    Country {
        code: "SE",
        weight: 3,
        currency: "SEK",
        calling_code: "46",
        nsn_len: 9,
        cities: &["Stockholm", "Göteborg", "Malmö", "Uppsala"],
    },
    Country {
        code: "IE",
        weight: 1,
        currency: "EUR",
        calling_code: "353",
        nsn_len: 9,
        cities: &["Dublin", "Cork", "Galway"],
    },
    Country {
        code: "DK",
        weight: 1,
        currency: "DKK",
        calling_code: "45",
        nsn_len: 8,
        cities: &["København", "Aarhus", "Odense"],
    },
    Country {
        code: "NO",
        weight: 1,
        currency: "NOK",
        calling_code: "47",
        nsn_len: 8,
        cities: &["Oslo", "Bergen", "Trondheim"],
    },
    Country {
        code: "BE",
        weight: 1,
        currency: "EUR",
        calling_code: "32",
        nsn_len: 9,
        cities: &["Bruxelles", "Antwerpen", "Gent"],
    },
];

const FIRST_NAMES: &[&str] = &[
    "Emma",
    "Olivia",
    "Ava",
    "Sophia",
    "Mia",
    "Amelia",
    "Charlotte",
    "Isla",
    "Hannah",
    "Lea",
    "Chloé",
    "Julia",
    "Sofia",
    "Giulia",
    "Lucía",
    "Elsa",
    "Noor",
    "Zoe",
    "Grace",
    "Aisha",
    "Liam",
    "Noah",
    "Oliver",
    "Elijah",
    "James",
    "Lucas",
    "Ben",
    "Jonas",
    "Luca",
    "Hugo",
    "Mateo",
    "Finn",
    "Daan",
    "Oscar",
    "Leon",
    "Arthur",
    "Jack",
    "Ethan",
    "Mohammed",
    "Wei",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martin",
    "Wilson",
    "Taylor",
    "Anderson",
    "Thomas",
    "Moore",
    "Jackson",
    "Lee",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Bernard",
    "Dubois",
    "Durand",
    "Lefebvre",
    "de Vries",
    "Jansen",
    "van Dijk",
    "Bakker",
    "Rossi",
    "Russo",
    "Ferrari",
    "García",
    "Fernández",
    "López",
    "Andersson",
    "Johansson",
    "Karlsson",
    "O'Brien",
    "Nguyen",
];

const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "gmx.de",
    "web.de",
    "orange.fr",
    "proton.me",
    "example.com",
];

const SOURCES: &[&str] = &["organic", "direct", "email", "ads", "social", "referral"];
const CATEGORIES: &[&str] = &[
    "shoes",
    "outerwear",
    "tops",
    "bags",
    "accessories",
    "home",
    "beauty",
];
const CAMPAIGNS: &[&str] = &[
    "newsletter",
    "new_arrivals",
    "sale",
    "abandoned_cart",
    "win_back",
    "vip_preview",
];
const DISCOUNT_CODES: &[&str] = &[
    "SAVE15", "SPRING20", "SUMMER15", "FRIEND10", "VIP25", "FLASH20",
];

/// The synthetic shop's response to a campaign (the demo's lift): each of `members` (customer id,
/// whether the platform received them) orders once within `days` after `synced_at` with probability
/// `treated` if received, else `baseline`. Seeded per customer id, so the same members give the same
/// orders; ids are `resp-<customer>` so rerunning replaces rather than duplicates.
pub fn campaign_response(
    members: &[(String, bool)],
    synced_at: DateTime<Utc>,
    days: i64,
    treated: f64,
    baseline: f64,
    seed: u64,
) -> Vec<Order> {
    let start = synced_at.timestamp();
    let span = days.max(1) * 86_400;
    members
        .iter()
        .filter_map(|(id, received)| {
            let key = id.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            let mut rng = ChaCha8Rng::seed_from_u64(key);
            let p = if *received { treated } else { baseline };
            if rng.gen::<f64>() >= p {
                return None;
            }
            let at = start + 1 + rng.gen_range(0..span - 1);
            let total = (20.0 + 80.0 * rng.gen::<f64>() * 100.0).round() / 100.0;
            Some(Order {
                id: format!("resp-{id}"),
                customer_id: id.clone(),
                placed_at: DateTime::from_timestamp(at, 0).unwrap_or(synced_at),
                total: total.max(1.0),
                currency: Some("USD".into()),
                discount_code: None,
                free_shipping: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashMap;

    fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn all(customers: u64, seed: u64, chunk: usize) -> ShopChunk {
        let mut g = ShopGenerator::new(customers, seed, as_of());
        let mut out = ShopChunk::default();
        while let Some(c) = g.next_chunk(chunk) {
            out.customers.extend(c.customers);
            out.orders.extend(c.orders);
            out.events.extend(c.events);
        }
        out
    }

    #[test]
    fn synth_is_deterministic_and_chunk_size_independent() {
        let a = all(500, 7, 64);
        let b = all(500, 7, 500);
        let c = all(500, 7, 1);
        assert_eq!(a, b);
        assert_eq!(a, c);
        let d = all(500, 8, 64);
        assert_ne!(a.customers, d.customers);
        assert_eq!(a.customers.len(), 500);
        assert_eq!(a.customers[0].contact.customer_id, "c000001");
        assert_eq!(a.customers[499].contact.customer_id, "c000500");
    }

    #[test]
    fn synth_chunks_respect_max_and_end() {
        let mut g = ShopGenerator::new(10, 1, as_of());
        assert_eq!(g.next_chunk(4).map(|c| c.customers.len()), Some(4));
        assert_eq!(g.next_chunk(4).map(|c| c.customers.len()), Some(4));
        assert_eq!(g.next_chunk(4).map(|c| c.customers.len()), Some(2));
        assert!(g.next_chunk(4).is_none());
        assert!(ShopGenerator::new(0, 1, as_of()).next_chunk(10).is_none());
    }

    #[test]
    fn synth_times_are_after_created_at_and_not_after_as_of() {
        let shop = all(3000, 42, 1000);
        let created: HashMap<&str, DateTime<Utc>> = shop
            .customers
            .iter()
            .map(|c| (c.contact.customer_id.as_str(), c.created_at.unwrap()))
            .collect();
        let start = as_of() - chrono::Duration::days(731);
        for c in &shop.customers {
            let t = c.created_at.unwrap();
            assert!(t >= start && t <= as_of(), "{c:?}");
        }
        for o in &shop.orders {
            let c = created[o.customer_id.as_str()];
            assert!(o.placed_at > c, "order {o:?} before sign-up {c}");
            assert!(o.placed_at <= as_of());
            assert!(o.total > 0.0);
        }
        for e in &shop.events {
            let c = created[e.customer_id.as_str()];
            assert!(e.occurred_at >= c, "event {e:?} before sign-up {c}");
            assert!(e.occurred_at <= as_of());
        }
        let mut ids: Vec<&str> = shop.orders.iter().map(|o| o.id.as_str()).collect();
        ids.extend(shop.events.iter().filter_map(|e| e.id.as_deref()));
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids are unique");
    }

    #[test]
    fn synth_distribution_has_the_right_shape() {
        let n = 20_000u64;
        let shop = all(n, 3, 2000);
        let mut orders_per: HashMap<&str, u32> = HashMap::new();
        for o in &shop.orders {
            *orders_per.entry(o.customer_id.as_str()).or_default() += 1;
        }
        let count = |f: &dyn Fn(u32) -> bool| {
            shop.customers
                .iter()
                .filter(|c| {
                    f(orders_per
                        .get(c.contact.customer_id.as_str())
                        .copied()
                        .unwrap_or(0))
                })
                .count() as f64
                / n as f64
        };
        let never = count(&|k| k == 0);
        let once = count(&|k| k == 1);
        let some = count(&|k| (2..=10).contains(&k));
        let many = count(&|k| k >= 20);
        assert!((0.45..0.55).contains(&never), "never ordered {never}");
        assert!((0.18..0.32).contains(&once), "ordered once {once}");
        assert!((0.12..0.3).contains(&some), "2-10 orders {some}");
        assert!((0.01..0.06).contains(&many), "20+ orders {many}");
        let mean_orders = shop.orders.len() as f64 / n as f64;
        assert!(
            (2.5..3.5).contains(&mean_orders),
            "mean orders {mean_orders}"
        );
        let mean_events = shop.events.len() as f64 / n as f64;
        assert!(
            (5.0..7.0).contains(&mean_events),
            "mean events {mean_events}"
        );

        let share = |f: &dyn Fn(&Customer) -> bool| {
            shop.customers.iter().filter(|c| f(c)).count() as f64 / n as f64
        };
        let ads = share(&|c| c.consent_ads);
        let mail = share(&|c| c.consent_email);
        assert!((0.67..0.73).contains(&ads), "consent_ads {ads}");
        assert!((0.57..0.63).contains(&mail), "consent_email {mail}");
        let malformed = share(&|c| {
            c.contact.email.as_deref().is_some_and(|e| {
                let e = e.trim();
                let parts: Vec<&str> = e.split('@').collect();
                parts.len() != 2
                    || parts[0].is_empty()
                    || !parts[1].contains('.')
                    || e.contains(' ')
            })
        });
        assert!(
            (0.01..0.03).contains(&malformed),
            "malformed emails {malformed}"
        );
        let countries: std::collections::HashSet<&str> = shop
            .customers
            .iter()
            .filter_map(|c| c.contact.country.as_deref())
            .collect();
        assert!(countries.len() >= 10);
        assert!(shop.customers.iter().any(|c| c
            .contact
            .phone
            .as_deref()
            .is_some_and(|p| p.starts_with('+'))));
        assert!(shop.customers.iter().any(|c| c
            .contact
            .phone
            .as_deref()
            .is_some_and(|p| p.starts_with('0'))));

        // Kinds present, with the personas the templates look for.
        let kinds: std::collections::HashSet<&str> =
            shop.events.iter().map(|e| e.kind.as_str()).collect();
        for k in [
            "visit",
            "product_view",
            "add_to_cart",
            "checkout_started",
            "email_open",
            "email_click",
        ] {
            assert!(kinds.contains(k), "missing event kind {k}");
        }
        let week_ago = as_of() - chrono::Duration::days(7);
        let recent_buyers: std::collections::HashSet<&str> = shop
            .orders
            .iter()
            .filter(|o| o.placed_at >= week_ago)
            .map(|o| o.customer_id.as_str())
            .collect();
        let abandoners: std::collections::HashSet<&str> = shop
            .events
            .iter()
            .filter(|e| e.kind == "add_to_cart" && e.occurred_at >= week_ago)
            .map(|e| e.customer_id.as_str())
            .filter(|c| !recent_buyers.contains(c))
            .collect();
        assert!(
            abandoners.len() as f64 > 0.05 * n as f64,
            "cart abandoners {}",
            abandoners.len()
        );
        let half_year = as_of() - chrono::Duration::days(180);
        let mut last_order: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for o in &shop.orders {
            let e = last_order
                .entry(o.customer_id.as_str())
                .or_insert(o.placed_at);
            *e = (*e).max(o.placed_at);
        }
        let lapsed = last_order.values().filter(|t| **t < half_year).count() as f64 / n as f64;
        assert!(lapsed > 0.08, "lapsed {lapsed}");
        let discounted = shop
            .orders
            .iter()
            .filter(|o| o.discount_code.is_some())
            .count() as f64
            / shop.orders.len() as f64;
        assert!(
            (0.1..0.4).contains(&discounted),
            "discounted orders {discounted}"
        );
        let mut spend: HashMap<&str, f64> = HashMap::new();
        for o in &shop.orders {
            *spend.entry(o.customer_id.as_str()).or_default() += o.total;
        }
        let vips = spend.values().filter(|s| **s >= 2000.0).count();
        assert!(vips as f64 > 0.01 * n as f64, "vips {vips}");

        // Seasonality: Nov/Dec get more orders per day than the rest of the year.
        let (mut peak, mut rest) = (0usize, 0usize);
        for o in &shop.orders {
            if matches!(o.placed_at.month(), 11 | 12) {
                peak += 1;
            } else {
                rest += 1;
            }
        }
        let peak_rate = peak as f64 / 61.0;
        let rest_rate = rest as f64 / 304.0;
        assert!(
            peak_rate > 1.4 * rest_rate,
            "peak {peak_rate} vs rest {rest_rate}"
        );
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use chrono::TimeZone;

    /// Generation speed alone, to tell generator cost from store cost in load benchmarks; run with
    /// `cargo test --release -p campaignd-core synth_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn synth_speed() {
        let as_of = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let started = std::time::Instant::now();
        let mut g = ShopGenerator::new(100_000, 1, as_of);
        let mut rows = 0;
        while let Some(c) = g.next_chunk(2000) {
            rows += c.customers.len() + c.orders.len() + c.events.len();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "generated {rows} rows in {secs:.2}s: {:.0} rows/s",
            rows as f64 / secs
        );
    }
}
