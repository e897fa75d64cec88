//! DynamoDB's echo of a request member in a constraint message: a list or map too long is
//! quoted back as its Java `toString()`, e.g. `[KeySchemaElement(attributeName=pk,
//! keyType=HASH), ...]` or `{orders=[WriteRequest(putRequest=PutRequest(item={pk=
//! AttributeValue(s=a, n=null, ...)}, workloadProfileName=null), deleteRequest=null)]}`.
//! The recorded answers (docs/compatibility.md) fix the shapes of `KeySchemaElement`,
//! `WriteRequest`, `PutRequest` and `AttributeValue`; the others follow the same rules:
//! members in the API model's order, in camel case, `null` where not sent.

use std::collections::{BTreeMap, HashMap};

use tidemark_core::model::AttributeValue;

use crate::server::error::ApiError;

/// A value rendered as DynamoDB's Java model renders it.
pub(crate) trait Echo {
    fn echo(&self, out: &mut String);
}

/// The echo of `value`, as a string.
pub(crate) fn echo(value: &impl Echo) -> String {
    let mut out = String::new();
    value.echo(&mut out);
    out
}

/// `Name(member=value, ...)`, members in the order given.
pub(crate) fn object(out: &mut String, name: &str, members: &[(&str, &dyn Echo)]) {
    out.push_str(name);
    out.push('(');
    for (i, (member, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(member);
        out.push('=');
        value.echo(out);
    }
    out.push(')');
}

impl Echo for String {
    fn echo(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl<T: Echo> Echo for Option<T> {
    fn echo(&self, out: &mut String) {
        match self {
            Some(value) => value.echo(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: Echo> Echo for [T] {
    fn echo(&self, out: &mut String) {
        out.push('[');
        for (i, value) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            value.echo(out);
        }
        out.push(']');
    }
}

impl<T: Echo> Echo for Vec<T> {
    fn echo(&self, out: &mut String) {
        self.as_slice().echo(out);
    }
}

fn map<'a, V: Echo + 'a>(out: &mut String, entries: impl Iterator<Item = (&'a String, &'a V)>) {
    out.push('{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(key);
        out.push('=');
        value.echo(out);
    }
    out.push('}');
}

impl<V: Echo> Echo for BTreeMap<String, V> {
    fn echo(&self, out: &mut String) {
        map(out, self.iter());
    }
}

impl<V: Echo> Echo for HashMap<String, V> {
    fn echo(&self, out: &mut String) {
        // Java's HashMap has no order a client could rely on; the names' order is stable.
        let mut entries: Vec<_> = self.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        map(out, entries.into_iter());
    }
}

/// A `java.nio.ByteBuffer`, as Java prints one.
struct Bytes(usize);

impl Echo for Bytes {
    fn echo(&self, out: &mut String) {
        out.push_str(&format!(
            "java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]",
            self.0
        ));
    }
}

struct Flag(bool);

impl Echo for Flag {
    fn echo(&self, out: &mut String) {
        out.push_str(if self.0 { "true" } else { "false" });
    }
}

impl Echo for AttributeValue {
    fn echo(&self, out: &mut String) {
        let (mut s, mut n, mut b, mut ss, mut ns, mut bs) = (None, None, None, None, None, None);
        let (mut m, mut l, mut null, mut boolean) = (None, None, None, None);
        match self {
            AttributeValue::S(v) => s = Some(v.clone()),
            AttributeValue::N(v) => n = Some(v.to_string()),
            AttributeValue::B(v) => b = Some(Bytes(v.len())),
            AttributeValue::Ss(v) => ss = Some(v.iter().cloned().collect::<Vec<_>>()),
            AttributeValue::Ns(v) => ns = Some(v.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
            AttributeValue::Bs(v) => {
                bs = Some(v.iter().map(|b| Bytes(b.len())).collect::<Vec<_>>())
            }
            AttributeValue::M(v) => m = Some(v),
            AttributeValue::L(v) => l = Some(v),
            AttributeValue::Null => null = Some(Flag(true)),
            AttributeValue::Bool(v) => boolean = Some(Flag(*v)),
        }
        let none: Option<String> = None;
        object(
            out,
            "AttributeValue",
            &[
                ("s", &s),
                ("n", &n),
                ("b", &b),
                ("iNT", &none),
                ("dECIMAL", &none),
                ("dOUBLE", &none),
                ("sS", &ss),
                ("nS", &ns),
                ("bS", &bs),
                ("iNTSET", &none),
                ("dECIMALSET", &none),
                ("dOUBLESET", &none),
                ("m", &m),
                ("l", &l),
                ("nULL", &null),
                ("bOOL", &boolean),
            ],
        );
    }
}

/// DynamoDB's check of a transaction's `TransactItems`: 1 to 100 actions, the list echoed
/// back when it has too many.
pub(crate) fn check_transact_items<T: Echo>(items: &[T]) -> Result<(), ApiError> {
    const MAX_ACTIONS: usize = 100;
    if items.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if items.len() > MAX_ACTIONS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_ACTIONS}",
            echo(&items)
        )));
    }
    Ok(())
}

impl<T: Echo + ?Sized> Echo for &T {
    fn echo(&self, out: &mut String) {
        (**self).echo(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribute_value_lists_every_type_member_as_dynamodb_echoes_it() {
        let value = AttributeValue::S("bw-0".into());
        assert_eq!(
            echo(&value),
            "AttributeValue(s=bw-0, n=null, b=null, iNT=null, dECIMAL=null, dOUBLE=null, \
             sS=null, nS=null, bS=null, iNTSET=null, dECIMALSET=null, dOUBLESET=null, m=null, \
             l=null, nULL=null, bOOL=null)"
        );
        let nested = AttributeValue::M(BTreeMap::from([(
            "k".to_string(),
            AttributeValue::Bool(true),
        )]));
        assert!(echo(&nested).contains(
            "m={k=AttributeValue(s=null, n=null, b=null, iNT=null, dECIMAL=null, dOUBLE=null, \
             sS=null, nS=null, bS=null, iNTSET=null, dECIMALSET=null, dOUBLESET=null, m=null, \
             l=null, nULL=null, bOOL=true)}"
        ));
    }
}
