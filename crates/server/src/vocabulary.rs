//! Closed sets of names that travel as strings (in rows, requests and
//! responses) but are enums in the code: each has one `as_str`, one
//! `FromStr` that fails on anything else, and an `ALL` list.
//!
//! A name read from the database that does not parse is an internal error
//! (see [`Unknown::internal`]), never a silent default; a name from a
//! request that does not parse is refused by the caller with the field it
//! came in.

/// A name outside its vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct Unknown {
    /// What kind of name, e.g. `connection status`.
    pub what: &'static str,
    /// The name, cut to 64 characters.
    pub value: String,
}

impl Unknown {
    pub fn new(what: &'static str, value: &str) -> Self {
        Self {
            what,
            value: value.chars().take(64).collect(),
        }
    }

    /// A stored value that does not parse: the database holds something the
    /// code does not know, named with the row it came from.
    pub fn internal(self, row: impl std::fmt::Display) -> crate::error::Error {
        crate::error::Error::caused_by(row.to_string(), self)
    }
}

/// Declare a vocabulary enum: `Variant = "wire_name"` for each value. The
/// enum derives poem-openapi's `Enum` (so the spec lists the names where the
/// API carries it), serde and schemars with the same names.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, poem_openapi::Enum, serde::Serialize,
            serde::Deserialize, rmcp::schemars::JsonSchema,
        )]
        #[schemars(crate = "rmcp::schemars")]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                #[oai(rename = $wire)]
                #[serde(rename = $wire)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::vocabulary::Unknown;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::vocabulary::Unknown::new($what, s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use vocabulary;

/// The check every vocabulary gets in its unit tests: each value's name
/// parses back to it, the names are distinct, and `unknown` is refused.
#[cfg(test)]
pub fn assert_round_trip<T>(all: &[T], unknown: &str)
where
    T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr<Err = Unknown>,
{
    let mut names = std::collections::BTreeSet::new();
    for v in all {
        let name = v.to_string();
        assert_eq!(name.parse::<T>(), Ok(*v), "{name}");
        assert!(names.insert(name.clone()), "{name} is named twice");
    }
    let e = unknown.parse::<T>().expect_err(unknown);
    assert_eq!(e.value, unknown);
    assert!(e.to_string().contains(&format!("{unknown:?}")), "{e}");
    assert!("".parse::<T>().is_err(), "the empty name");
}
