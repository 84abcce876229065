//! The route table: each route name's dense id, and per route and method the slots of its
//! outcomes' metric handles, reached on the request path without hashing.
//!
//! A request's route name is almost always the same string object each time (axum's
//! `MatchedPath` shares one `Arc<str>` per route, a `route_fn` returns a literal), so a small
//! cache keyed by the string's address finds its id; the name is compared with the id's before
//! the id is used, so a reused address can never give a wrong route. Anything else goes
//! through a lock-free map, and registering a new route through a lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use foldhash::fast::RandomState;
use metrics::SharedString;
use vantage_instrument::names::OVERFLOW_ROUTE;

use super::labels::{METHOD_COUNT, MethodLabel, RouteId};

/// The most routes a table holds: ids fit the cache's 16 bits.
pub(crate) const MAX_ROUTES: usize = (1 << 16) - 3;
/// Outcomes (status and error) per route and method held in slots; more go to a map.
pub(crate) const OUTCOME_SLOTS: usize = 8;
/// Entries of the cache by name address.
const RECENT: usize = 16;
/// Addresses the cache can hold: user-space pointers of 64-bit platforms fit in 48 bits.
const ADDRESS_BITS: u32 = 48;

/// Whether two route names are the same text, compared eight bytes at a time (the last eight
/// overlapping the ones before) without a call to `memcmp`, which costs more than the
/// comparison for names this short.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        return a.iter().zip(b).fold(0, |differ, (x, y)| differ | (x ^ y)) == 0;
    }
    let word = |bytes: &[u8], at: usize| {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
    };
    let last = a.len() - 8;
    (0..last).step_by(8).all(|at| word(a, at) == word(b, at)) && word(a, last) == word(b, last)
}

/// The outcome slots of one route and method: `T` is the handles of one outcome.
pub(crate) type Slots<T> = [OnceLock<T>; OUTCOME_SLOTS];

pub(crate) struct RouteTable<T> {
    max_routes: usize,
    by_name: papaya::HashMap<Box<str>, RouteId, RandomState>,
    /// Per entry `address << 16 | id` of a name looked up lately, 0 when empty.
    recent: [AtomicU64; RECENT],
    /// Per id, from 0: the unmatched value, the overflow value, then the routes.
    entries: Box<[OnceLock<Box<Entry<T>>>]>,
    /// The number of entries set; its lock is the registration lock.
    len: Mutex<usize>,
    full: AtomicBool,
}

struct Entry<T> {
    name: SharedString,
    methods: [OnceLock<Box<Slots<T>>>; METHOD_COUNT],
}

impl<T> Entry<T> {
    fn new(name: SharedString) -> Box<Self> {
        Box::new(Self {
            name,
            methods: Default::default(),
        })
    }
}

impl<T> RouteTable<T> {
    /// A table of at most `max_routes` routes (at most [`MAX_ROUTES`]; checked by the layer's
    /// builder) besides the unmatched and overflow values.
    pub(crate) fn new(max_routes: usize, unmatched_route: SharedString) -> Self {
        let max_routes = max_routes.min(MAX_ROUTES);
        let entries: Box<[OnceLock<Box<Entry<T>>>]> =
            (0..max_routes + 2).map(|_| OnceLock::new()).collect();
        let _ = entries[0].set(Entry::new(unmatched_route));
        let _ = entries[1].set(Entry::new(SharedString::const_str(OVERFLOW_ROUTE)));
        Self {
            max_routes,
            by_name: papaya::HashMap::builder()
                .hasher(RandomState::default())
                .build(),
            recent: Default::default(),
            entries,
            len: Mutex::new(2),
            full: AtomicBool::new(false),
        }
    }

    /// The id of a route name, registering it while under the cap.
    #[inline]
    pub(crate) fn id(&self, name: Option<&str>) -> RouteId {
        let Some(name) = name else {
            return RouteId::UNMATCHED;
        };
        let address = name.as_ptr() as u64;
        let recent = &self.recent[recent_index(address)];
        let cached = recent.load(Ordering::Relaxed);
        if cached >> 16 == address {
            let id = RouteId((cached & 0xffff) as u32);
            if self
                .entry(id)
                .is_some_and(|entry| same_name(&entry.name, name))
            {
                return id;
            }
        }
        let id = self.lookup(name);
        // Not over an entry of the same route: a name made anew for each request (a
        // `route_fn` slicing the path) would otherwise write a shared line every time.
        let same_route = cached & 0xffff == u64::from(id.0);
        if address < 1 << ADDRESS_BITS && id != RouteId::OVERFLOW && !same_route {
            recent.store(address << 16 | u64::from(id.0), Ordering::Relaxed);
        }
        id
    }

    #[cold]
    fn lookup(&self, name: &str) -> RouteId {
        if let Some(id) = self.by_name.pin().get(name) {
            return *id;
        }
        if self.full.load(Ordering::Relaxed) {
            return RouteId::OVERFLOW;
        }
        self.register(name)
    }

    #[cold]
    fn register(&self, name: &str) -> RouteId {
        let mut len = self.len.lock().unwrap_or_else(PoisonError::into_inner);
        let by_name = self.by_name.pin();
        if let Some(id) = by_name.get(name) {
            return *id;
        }
        if *len - 2 >= self.max_routes {
            self.full.store(true, Ordering::Relaxed);
            return RouteId::OVERFLOW;
        }
        let id = RouteId(*len as u32);
        // The entry first: whoever finds the id finds its entry.
        let _ = self.entries[*len].set(Entry::new(SharedString::from(name.to_owned())));
        by_name.insert(name.into(), id);
        *len += 1;
        id
    }

    #[inline]
    fn entry(&self, id: RouteId) -> Option<&Entry<T>> {
        self.entries.get(id.0 as usize)?.get().map(|entry| &**entry)
    }

    /// The label value of a route id.
    pub(crate) fn name(&self, id: RouteId) -> SharedString {
        self.entry(id)
            .map_or(SharedString::const_str(OVERFLOW_ROUTE), |entry| {
                entry.name.clone()
            })
    }

    /// The number of distinct routes registered (the unmatched and overflow values excluded).
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// The outcome slots of a route and method, made on first use.
    #[inline]
    pub(crate) fn slots(&self, id: RouteId, method: MethodLabel) -> Option<&Slots<T>> {
        let methods = &self.entry(id)?.methods;
        let slots = methods.get(method.index())?;
        Some(slots.get_or_init(Box::default))
    }
}

/// The cache entry of a name's address (a multiplicative hash: allocations are aligned, so the
/// low bits alone would crowd a few entries).
fn recent_index(address: u64) -> usize {
    (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - RECENT.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_instrument::names::UNMATCHED_ROUTE;

    fn table(max_routes: usize) -> RouteTable<u32> {
        RouteTable::new(max_routes, UNMATCHED_ROUTE.into())
    }

    #[test]
    fn routes_past_the_cap_share_the_overflow_id() {
        let table = table(2);
        let a = table.id(Some("/a"));
        let b = table.id(Some("/b"));
        assert_eq!((a, b), (RouteId(2), RouteId(3)));
        assert_eq!(table.id(Some("/a")), a);
        assert_eq!(table.id(Some("/c")), RouteId::OVERFLOW);
        assert_eq!(table.id(Some("/d")), RouteId::OVERFLOW);
        assert_eq!(table.id(Some("/b")), b);
        assert_eq!(table.id(None), RouteId::UNMATCHED);
        assert_eq!(table.len(), 2);
        assert_eq!(&*table.name(RouteId::OVERFLOW), OVERFLOW_ROUTE);
        assert_eq!(&*table.name(RouteId::UNMATCHED), UNMATCHED_ROUTE);
        assert_eq!(&*table.name(b), "/b");
    }

    #[test]
    fn a_name_at_a_cached_address_is_compared_before_its_id_is_used() {
        let table = table(8);
        // One buffer, two names at its address in turn: the cache must not answer the first's id
        // for the second.
        let mut buffer = String::with_capacity(32);
        buffer.push_str("/users");
        let users = table.id(Some(&buffer));
        assert_eq!(table.id(Some(&buffer)), users);
        buffer.replace_range(.., "/orders");
        let orders = table.id(Some(&buffer));
        assert_ne!(orders, users);
        assert_eq!(&*table.name(orders), "/orders");
        assert_eq!(table.id(Some("/users")), users);
        assert_eq!(table.id(Some(&buffer)), orders);
        // A name's copies elsewhere in memory get its id too.
        assert_eq!(table.id(Some(&String::from("/users"))), users);
    }

    #[test]
    fn many_names_through_the_small_cache_keep_their_ids() {
        let table = table(1_000);
        let names: Vec<String> = (0..200).map(|i| format!("/route/{i}")).collect();
        let ids: Vec<RouteId> = names.iter().map(|name| table.id(Some(name))).collect();
        for _ in 0..3 {
            for (name, id) in names.iter().zip(&ids) {
                assert_eq!(table.id(Some(name)), *id);
                assert_eq!(&*table.name(*id), name.as_str());
            }
        }
        assert_eq!(table.len(), 200);
    }

    #[test]
    fn the_outcome_slots_of_a_route_and_method_are_made_once() {
        let table = table(2);
        let route = table.id(Some("/a"));
        let get = MethodLabel::of(&http::Method::GET);
        let slots = table.slots(route, get).expect("a registered route");
        assert_eq!(slots[0].get_or_init(|| 7), &7);
        let again = table.slots(route, get).expect("a registered route");
        assert_eq!(again[0].get(), Some(&7));
        assert!(table.slots(RouteId(3), get).is_none(), "no such route");
        let post = MethodLabel::of(&http::Method::POST);
        assert_eq!(table.slots(route, post).expect("route")[0].get(), None);
    }

    proptest::proptest! {
        /// The word-wise comparison agrees with `==` on names of every length, equal or
        /// differing in one byte anywhere, or in length.
        #[test]
        fn same_name_is_equality(
            name in "[a-z/{}_]{0,40}",
            at in 0..40usize,
            other in proptest::char::range('a', 'z'),
            cut in 0..41usize,
        ) {
            let mut changed = name.clone().into_bytes();
            if let Some(byte) = changed.get_mut(at) {
                *byte = other as u8;
            }
            let changed = String::from_utf8(changed).expect("ASCII");
            let shorter = &name[..cut.min(name.len())];
            proptest::prop_assert!(same_name(&name, &name.clone()));
            proptest::prop_assert_eq!(same_name(&name, &changed), name == changed);
            proptest::prop_assert_eq!(same_name(&changed, &name), name == changed);
            proptest::prop_assert_eq!(same_name(&name, shorter), name == shorter);
        }

        /// Names written in turn into a few reused buffers (the same addresses again and again,
        /// as freed and reallocated route names would be) always get the id of their text: the
        /// first-registered order, past the cap the overflow id.
        #[test]
        fn ids_follow_the_text_whatever_the_address(
            writes in proptest::collection::vec((0..3usize, 0..12usize), 1..200),
        ) {
            let table = table(8);
            let mut buffers: Vec<String> = (0..3).map(|_| String::with_capacity(64)).collect();
            let mut model: Vec<String> = Vec::new();
            for (buffer, name) in writes {
                let text = format!("/route/{name}");
                buffers[buffer].clear();
                buffers[buffer].push_str(&text);
                let expected = match model.iter().position(|known| *known == text) {
                    Some(index) => RouteId(index as u32 + 2),
                    None if model.len() < 8 => {
                        model.push(text.clone());
                        RouteId(model.len() as u32 + 1)
                    }
                    None => RouteId::OVERFLOW,
                };
                proptest::prop_assert_eq!(table.id(Some(&buffers[buffer])), expected);
            }
        }
    }

    #[test]
    fn two_threads_registering_the_same_names_agree_on_their_ids() {
        let table = table(100);
        let ids: Vec<Vec<RouteId>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        (0..50)
                            .map(|i| table.id(Some(&format!("/r/{i}"))))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(ids[0], ids[1]);
        assert_eq!(table.len(), 50);
    }
}
