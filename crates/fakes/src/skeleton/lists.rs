//! The audience bookkeeping the ad fakes share (Meta custom audiences, Google user lists, TikTok custom
//! audiences, LinkedIn DMP segments): audiences in creation order with numeric ids from one counter,
//! found by id or name, seeded as if made in the platform's UI, with a set of member keys each. Each
//! fake keeps its own audience type (its fields are the platform's) and its own refusals; [`Lists`]
//! dereferences to the slice so paging handlers index it as before.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};

/// An audience a fake holds: what the shared bookkeeping needs of each platform's audience type.
pub(crate) trait Listed {
    /// A fresh audience called `name` with id `id`, as seeding makes it.
    fn seeded(id: String, name: String) -> Self;
    /// Remote id.
    fn id(&self) -> &str;
    /// Name the platform shows.
    fn name(&self) -> &str;
    /// Member keys.
    fn members_mut(&mut self) -> &mut BTreeSet<String>;
    /// Member keys.
    fn members(&self) -> &BTreeSet<String>;
}

/// Audiences in creation order, with the id counter the fake numbers its objects from.
#[derive(Debug)]
pub(crate) struct Lists<L> {
    entries: Vec<L>,
    next_id: u64,
}

impl<L> Default for Lists<L> {
    fn default() -> Self {
        Lists {
            entries: Vec::new(),
            next_id: 1,
        }
    }
}

impl<L> Deref for Lists<L> {
    type Target = [L];
    fn deref(&self) -> &[L] {
        &self.entries
    }
}

impl<L> DerefMut for Lists<L> {
    fn deref_mut(&mut self) -> &mut [L] {
        &mut self.entries
    }
}

impl<L: Listed + Clone> Lists<L> {
    /// No audiences yet; ids count up from `first_id` (each platform's ids look like its own).
    pub(crate) fn starting_at(first_id: u64) -> Self {
        Lists {
            entries: Vec::new(),
            next_id: first_id,
        }
    }

    /// The next id, for an audience or any other object the fake numbers (Google's jobs).
    pub(crate) fn mint_id(&mut self) -> String {
        let id = self.next_id.to_string();
        self.next_id += 1;
        id
    }

    /// Adds an audience made by a create request.
    pub(crate) fn push(&mut self, audience: L) {
        self.entries.push(audience);
    }

    /// Creates audiences directly (as if made in the platform's UI); returns their ids.
    pub(crate) fn seed<I, S>(&mut self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        names
            .into_iter()
            .map(|n| {
                let id = self.mint_id();
                self.entries.push(L::seeded(id.clone(), n.into()));
                id
            })
            .collect()
    }

    /// The audience with this id.
    pub(crate) fn get(&self, id: &str) -> Option<&L> {
        self.entries.iter().find(|a| a.id() == id)
    }

    /// The audience with this id, to change.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut L> {
        self.entries.iter_mut().find(|a| a.id() == id)
    }

    /// The id of the (first) audience with this name.
    pub(crate) fn id_of(&self, name: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|a| a.name() == name)
            .map(|a| a.id().to_string())
    }

    /// Whether an audience has this name.
    pub(crate) fn has_name(&self, name: &str) -> bool {
        self.entries.iter().any(|a| a.name() == name)
    }

    /// Every audience, as the fake's accessors hand them to tests.
    pub(crate) fn snapshot(&self) -> Vec<L> {
        self.entries.clone()
    }

    /// Current member keys of an audience (empty for an unknown id).
    pub(crate) fn members_of(&self, id: &str) -> BTreeSet<String> {
        self.get(id)
            .map(|a| a.members().clone())
            .unwrap_or_default()
    }

    /// Puts member keys into an audience directly (people added by hand before adoption).
    pub(crate) fn seed_members<I: IntoIterator<Item = String>>(&mut self, id: &str, keys: I) {
        if let Some(a) = self.get_mut(id) {
            a.members_mut().extend(keys);
        }
    }
}

/// Implements [`Listed`] for an audience struct with `id`, `name` and `members` fields: a seeded one sets
/// the listed `field: value` pairs and takes `Default` for the rest.
macro_rules! listed {
    ($ty:ty $(, $field:ident: $value:expr)*) => {
        impl $crate::skeleton::lists::Listed for $ty {
            fn seeded(id: String, name: String) -> Self {
                Self {
                    id,
                    name,
                    $($field: $value,)*
                    ..Self::default()
                }
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn members_mut(&mut self) -> &mut std::collections::BTreeSet<String> {
                &mut self.members
            }
            fn members(&self) -> &std::collections::BTreeSet<String> {
                &self.members
            }
        }
    };
}
pub(crate) use listed;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Aud {
        id: String,
        name: String,
        members: BTreeSet<String>,
    }
    listed!(Aud);

    #[test]
    fn seeds_finds_and_keeps_members() {
        let mut lists: Lists<Aud> = Lists::starting_at(7);
        assert_eq!(lists.seed(["a", "b", "a"]), ["7", "8", "9"]);
        assert_eq!(lists.mint_id(), "10");
        let cases = [("a", Some("7")), ("b", Some("8")), ("c", None)];
        for (name, id) in cases {
            assert_eq!(lists.id_of(name).as_deref(), id, "{name}");
            assert_eq!(lists.has_name(name), id.is_some(), "{name}");
        }
        lists.seed_members("8", ["k1".to_string(), "k2".to_string()]);
        lists.seed_members("404", ["lost".to_string()]);
        assert_eq!(lists.members_of("8").len(), 2);
        assert!(lists.members_of("7").is_empty());
        assert!(lists.members_of("404").is_empty());
        lists.push(Aud::seeded("11".into(), "d".into()));
        assert_eq!(lists.len(), 4);
        assert_eq!(lists[3].name, "d");
        assert_eq!(lists.snapshot().len(), 4);
    }
}
