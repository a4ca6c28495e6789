//! One resource, one URL: ids taken only in the spelling their type writes back.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

/// An id taken only in the spelling `T`'s `Display` writes back: `42`, not `042` or `+42`;
/// for a UUID, lower-case hyphenated only, not upper case, braces, no hyphens or
/// `urn:uuid:`.
///
/// `FromStr` takes many spellings for one value, so one resource had many URLs, and a
/// rule or a cache keyed on the path in front (a deny rule, a per-URL authorisation or
/// cache entry) could be bypassed or poisoned. Any other spelling fails to deserialize; as
/// an [`OwnedResource::Id`](crate::OwnedResource::Id), [`Owned<T>`](crate::Owned) answers
/// it with the same 404 as a missing resource. The path is percent-decoded first:
/// `/notes/%34%32` is `/notes/42`, the same URI by RFC 3986 §6.2.2.2.
///
/// `Owned<T>` already takes integer ids (`i64`, `u64`, …, also inside a tuple or struct
/// of path parameters) only in this spelling; wrap the other types, such as `Uuid`, or an
/// id taken with `Path` outside `Owned<T>`.
///
/// ```
/// use hardening_auth::CanonicalId;
///
/// assert_eq!(CanonicalId::<u64>::parse("42").map(CanonicalId::into_inner), Some(42));
/// for other in ["042", "+42", "-0", "42 ", ""] {
///     assert_eq!(CanonicalId::<u64>::parse(other), None, "{other:?}");
/// }
/// // In an `OwnedResource`: `type Id = CanonicalId<Uuid>;`, then `*id` or `id.into_inner()`.
/// let id = CanonicalId::<u64>::parse("42").unwrap();
/// assert_eq!((*id, format!("/notes/{id}")), (42, "/notes/42".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CanonicalId<T>(T);

impl<T> CanonicalId<T> {
    /// The id of `value` (a value has one spelling, the one its `Display` writes).
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: FromStr + fmt::Display> CanonicalId<T> {
    /// The id `text` spells, if `T` writes it back exactly so.
    pub fn parse(text: &str) -> Option<Self> {
        let value = text.parse::<T>().ok()?;
        (value.to_string() == text).then_some(Self(value))
    }
}

impl<T> Deref for CanonicalId<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Display> fmt::Display for CanonicalId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, T: FromStr + fmt::Display> Deserialize<'de> for CanonicalId<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(SpelledAs(PhantomData))
    }
}

/// The `T` that `text` spells canonically, or the error saying it is not so spelled.
fn canonical<T: FromStr + fmt::Display, E: de::Error>(
    text: &str,
    expected: &dyn de::Expected,
) -> Result<T, E> {
    CanonicalId::parse(text)
        .map(CanonicalId::into_inner)
        .ok_or_else(|| E::invalid_value(Unexpected::Str(text), expected))
}

/// What a canonical spelling of `T` is, for the error saying the text is not one.
fn expecting<T>(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{} spelled as it is written", std::any::type_name::<T>())
}

/// A [`CanonicalId<T>`] from its text.
struct SpelledAs<T>(PhantomData<T>);

impl<'de, T: FromStr + fmt::Display> Visitor<'de> for SpelledAs<T> {
    type Value = CanonicalId<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting::<T>(f)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        canonical(text, &self).map(CanonicalId)
    }
}

/// An integer type, handed to a visitor as itself.
trait Integer: FromStr + fmt::Display {
    fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E>;
}

macro_rules! integers {
    ($($ty:ty => $visit:ident),*) => {$(
        impl Integer for $ty {
            fn visit<'de, V: Visitor<'de>, E: de::Error>(self, visitor: V) -> Result<V::Value, E> {
                visitor.$visit(self)
            }
        }
    )*};
}

integers!(
    i8 => visit_i8, i16 => visit_i16, i32 => visit_i32, i64 => visit_i64, i128 => visit_i128,
    u8 => visit_u8, u16 => visit_u16, u32 => visit_u32, u64 => visit_u64, u128 => visit_u128
);

/// The integer `V` asked for, read from the text of its canonical spelling.
struct IntegerSpelledAs<T, V>(PhantomData<T>, V);

impl<'de, T: Integer, V: Visitor<'de>> Visitor<'de> for IntegerSpelledAs<T, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting::<T>(f)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<V::Value, E> {
        canonical::<T, E>(text, &self)?.visit(self.1)
    }
}

/// Deserializes as the wrapped deserializer does, but integers, at any depth (a tuple or a
/// struct of path parameters), only from their canonical spelling: how `Owned<T>` reads any
/// `T::Id`. Wraps, in turn, the visitors, sequences, maps and seeds through which nested
/// values are deserialized.
pub(crate) struct CanonicalIntegers<X>(pub(crate) X);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for CanonicalIntegers<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(CanonicalIntegers(deserializer)).map(CanonicalIntegers)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for CanonicalIntegers<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(CanonicalIntegers(deserializer))
    }
}

macro_rules! integers_from_text {
    ($($method:ident => $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_str(IntegerSpelledAs(PhantomData::<$ty>, visitor))
        }
    )*};
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*) $wrap:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* $wrap(visitor))
        }
    )*};
}

/// The visitor as it is: what it is given holds no nested deserializer.
fn as_is<V>(visitor: V) -> V {
    visitor
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for CanonicalIntegers<D> {
    type Error = D::Error;

    integers_from_text!(
        deserialize_i8 => i8, deserialize_i16 => i16, deserialize_i32 => i32,
        deserialize_i64 => i64, deserialize_i128 => i128, deserialize_u8 => u8,
        deserialize_u16 => u16, deserialize_u32 => u32, deserialize_u64 => u64,
        deserialize_u128 => u128
    );

    forward! {
        deserialize_any() CanonicalIntegers;
        deserialize_option() CanonicalIntegers;
        deserialize_newtype_struct(name: &'static str) CanonicalIntegers;
        deserialize_seq() CanonicalIntegers;
        deserialize_tuple(len: usize) CanonicalIntegers;
        deserialize_tuple_struct(name: &'static str, len: usize) CanonicalIntegers;
        deserialize_map() CanonicalIntegers;
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) CanonicalIntegers;
        // A path enum's variants are names (unit variants): nothing nested to wrap.
        deserialize_enum(name: &'static str, variants: &'static [&'static str]) as_is;
        deserialize_bool() as_is;
        deserialize_f32() as_is;
        deserialize_f64() as_is;
        deserialize_char() as_is;
        deserialize_str() as_is;
        deserialize_string() as_is;
        deserialize_bytes() as_is;
        deserialize_byte_buf() as_is;
        deserialize_unit() as_is;
        deserialize_unit_struct(name: &'static str) as_is;
        deserialize_identifier() as_is;
        deserialize_ignored_any() as_is;
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! visit_as_is {
    ($($method:ident($ty:ty)),*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.0.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for CanonicalIntegers<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    visit_as_is!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>)
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(CanonicalIntegers(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(CanonicalIntegers(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(CanonicalIntegers(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(CanonicalIntegers(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for CanonicalIntegers<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.0.next_element_seed(CanonicalIntegers(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CanonicalIntegers<A> {
    type Error = A::Error;

    // Keys are the path parameters' names, never integers.
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(CanonicalIntegers(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    /// `str::parse` takes `042` and `+42` for 42; only the spelling `i64` writes is an id.
    #[test]
    fn an_integer_id_has_one_spelling() {
        for (text, id) in [
            ("1", Some(1)),
            ("0", Some(0)),
            ("-42", Some(-42)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("00", None),
            ("042", None),
            ("+42", None),
            ("-042", None),
            ("-0", None),
            ("+0", None),
            ("", None),
            (" 42", None),
            ("42\n", None),
            ("4_2", None),
            ("42.0", None),
            ("4e1", None),
            ("0x2a", None),
            ("\u{664}\u{662}", None),   // Arabic-Indic ٤٢
            ("\u{ff14}\u{ff12}", None), // full-width ４２
        ] {
            let got = CanonicalId::<i64>::parse(text).map(CanonicalId::into_inner);
            assert_eq!(got, id, "{text:?}");
        }
    }

    /// A type whose `FromStr` takes upper case and expanded forms, as `Uuid`'s does, is taken
    /// only as its `Display` writes it; deserializing follows the same rule.
    #[test]
    fn any_id_is_taken_only_as_it_is_written() {
        let written = Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0xab);
        for (text, canonical) in [
            ("::ab", true),
            ("::AB", false),
            ("::00ab", false),
            ("0::ab", false),
            ("0:0:0:0:0:0:0:ab", false),
        ] {
            let want = canonical.then_some(written);
            let parsed = CanonicalId::<Ipv6Addr>::parse(text).map(CanonicalId::into_inner);
            assert_eq!(parsed, want, "{text:?}");
            let json = serde_json::Value::from(text);
            let deserialized = serde_json::from_value::<CanonicalId<Ipv6Addr>>(json).ok();
            assert_eq!(deserialized.map(CanonicalId::into_inner), want, "{text:?}");
        }
        let id = CanonicalId::new(written);
        assert_eq!((*id, id.to_string()), (written, "::ab".to_owned()));
    }
}
