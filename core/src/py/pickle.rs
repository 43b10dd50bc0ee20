//! A bounded reader for the pickles Django's cache backends write for a
//! session (`pickle.dumps(session_dict, pickle.HIGHEST_PROTOCOL)`).
//!
//! Only the plain types a session holds are read — `dict`, `str`, `int`,
//! `bool`, `None`, `float`, `list`, `tuple` — with the opcodes CPython's
//! pickler writes for them (protocols 2-5, framing included). Every opcode
//! that names, builds or calls an object (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`,
//! `INST`, `OBJ`, `NEWOBJ`, `BUILD`, persistent ids, extensions) is a
//! [`PickleError::Forbidden`]: nothing is ever imported or called. Any other
//! opcode is [`PickleError::Unsupported`].
//!
//! Memory is bounded by the input: each opcode makes at most one value and
//! every length is checked against the bytes that remain before anything is
//! allocated. The tree handed back is bounded in depth and in size (shared
//! memo references count once per use, so a pickle that repeats a value
//! through the memo cannot grow past [`MAX_VALUES`]).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The largest pickle read, in bytes.
pub const MAX_PICKLE_BYTES: usize = 1 << 20;
/// The deepest nesting of containers read.
pub const MAX_DEPTH: usize = 64;
/// The most values in a decoded tree (memo references count each use).
pub const MAX_VALUES: usize = 1 << 17;
/// The deepest the pickle machine's stack may grow.
const MAX_STACK: usize = 1 << 12;

/// A plain Python value from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits in 64 bits.
    Int(i64),
    /// A larger `int`: little-endian two's complement bytes as pickled.
    BigInt(Vec<u8>),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `list`.
    List(Vec<PickleValue>),
    /// A `tuple`.
    Tuple(Vec<PickleValue>),
    /// A `dict`, items in insertion order (a repeated key keeps its last value
    /// in the position of its first, as Python's `dict` does).
    Dict(Vec<(PickleValue, PickleValue)>),
}

impl PickleValue {
    /// For a dict: the value of the string key `key`.
    pub fn get(&self, key: &str) -> Option<&PickleValue> {
        match self {
            PickleValue::Dict(items) => items.iter().find_map(|(k, v)| match k {
                PickleValue::Str(s) if s == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// Why a pickle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickleError {
    /// The input ends inside an opcode or before `STOP`.
    Truncated,
    /// The input, a length, the stack or the decoded tree is over its bound.
    TooLarge,
    /// Nesting deeper than [`MAX_DEPTH`] (or a container that holds itself).
    TooDeep,
    /// An opcode that imports, builds or calls an object: never executed.
    Forbidden(u8),
    /// An opcode for a type a session does not hold, or an unknown one.
    Unsupported(u8),
    /// A `PROTO` above 5.
    Protocol(u8),
    /// A string that is not UTF-8.
    BadUtf8,
    /// Opcodes in an order the pickle machine cannot run (empty stack,
    /// missing mark, unknown memo entry, item added to a non-container,
    /// unhashable dict key).
    Malformed(&'static str),
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleError::Truncated => f.write_str("pickle is truncated"),
            PickleError::TooLarge => f.write_str("pickle is over a size bound"),
            PickleError::TooDeep => f.write_str("pickle nests too deep"),
            PickleError::Forbidden(op) => {
                write!(f, "pickle opcode 0x{op:02x} builds objects: refused")
            }
            PickleError::Unsupported(op) => write!(f, "pickle opcode 0x{op:02x} is not supported"),
            PickleError::Protocol(p) => write!(f, "pickle protocol {p} is not supported"),
            PickleError::BadUtf8 => f.write_str("pickle string is not UTF-8"),
            PickleError::Malformed(m) => write!(f, "malformed pickle: {m}"),
        }
    }
}

impl core::error::Error for PickleError {}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Mark,
    Obj(usize),
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Slot>,
    memo: BTreeMap<u64, usize>,
}

const fn malformed(m: &'static str) -> PickleError {
    PickleError::Malformed(m)
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).ok_or(PickleError::TooLarge)?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(PickleError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.array::<1>()?[0])
    }

    fn len_u32(&mut self) -> Result<usize, PickleError> {
        usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|_| PickleError::TooLarge)
    }

    fn len_u64(&mut self) -> Result<usize, PickleError> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| PickleError::TooLarge)
    }

    /// A length-prefixed payload: the length must fit in what remains.
    fn payload(&mut self, len: usize) -> Result<&'a [u8], PickleError> {
        if len > self.input.len().saturating_sub(self.pos) {
            return Err(PickleError::Truncated);
        }
        self.take(len)
    }

    fn push(&mut self, node: Node) -> Result<(), PickleError> {
        let id = self.nodes.len();
        self.nodes.push(node);
        self.push_slot(Slot::Obj(id))
    }

    fn push_slot(&mut self, slot: Slot) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::TooLarge);
        }
        self.stack.push(slot);
        Ok(())
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(Slot::Obj(id)) => Ok(id),
            Some(Slot::Mark) => Err(malformed("a mark where a value was expected")),
            None => Err(malformed("stack underflow")),
        }
    }

    fn top(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(Slot::Obj(id)) => Ok(*id),
            Some(Slot::Mark) => Err(malformed("a mark where a value was expected")),
            None => Err(malformed("stack underflow")),
        }
    }

    /// Pops everything above the topmost mark, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or(malformed("no mark"))?;
        let items = self
            .stack
            .split_off(at)
            .into_iter()
            .filter_map(|s| match s {
                Slot::Obj(id) => Some(id),
                Slot::Mark => None,
            })
            .collect();
        Ok(items)
    }

    fn node_mut(&mut self, id: usize) -> Result<&mut Node, PickleError> {
        self.nodes.get_mut(id).ok_or(malformed("unknown value"))
    }

    fn hashable(&self, id: usize, depth: usize) -> Result<(), PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError::TooDeep);
        }
        match self.nodes.get(id) {
            Some(Node::List(_) | Node::Dict(_)) | None => Err(malformed("unhashable dict key")),
            Some(Node::Tuple(items)) => items
                .iter()
                .try_for_each(|&i| self.hashable(i, depth.saturating_add(1))),
            Some(_) => Ok(()),
        }
    }

    fn set_items(&mut self, dict: usize, flat: &[usize]) -> Result<(), PickleError> {
        if !flat.len().is_multiple_of(2) {
            return Err(malformed("odd number of dict items"));
        }
        for pair in flat.chunks_exact(2) {
            if let [k, _] = pair {
                self.hashable(*k, 0)?;
            }
        }
        let Node::Dict(items) = self.node_mut(dict)? else {
            return Err(malformed("items set on a non-dict"));
        };
        for pair in flat.chunks_exact(2) {
            if let [k, v] = pair {
                items.push((*k, *v));
            }
        }
        Ok(())
    }

    fn append(&mut self, list: usize, values: &[usize]) -> Result<(), PickleError> {
        let Node::List(items) = self.node_mut(list)? else {
            return Err(malformed("append to a non-list"));
        };
        items.extend_from_slice(values);
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(index, id);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&index)
            .ok_or(malformed("unknown memo entry"))?;
        self.push_slot(Slot::Obj(id))
    }

    fn string(&mut self, len: usize) -> Result<(), PickleError> {
        let bytes = self.payload(len)?;
        let s = core::str::from_utf8(bytes).map_err(|_| PickleError::BadUtf8)?;
        self.push(Node::Str(String::from(s)))
    }

    fn long(&mut self, len: usize) -> Result<(), PickleError> {
        let bytes = self.payload(len)?;
        if bytes.len() <= 8 {
            let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut le = [fill; 8];
            for (d, s) in le.iter_mut().zip(bytes) {
                *d = *s;
            }
            self.push(Node::Int(i64::from_le_bytes(le)))
        } else {
            self.push(Node::BigInt(Vec::from(bytes)))
        }
    }

    fn tuple(&mut self, n: usize) -> Result<(), PickleError> {
        let at = self
            .stack
            .len()
            .checked_sub(n)
            .ok_or(malformed("stack underflow"))?;
        let items = self.stack.split_off(at);
        let mut ids = Vec::with_capacity(n);
        for s in items {
            match s {
                Slot::Obj(id) => ids.push(id),
                Slot::Mark => return Err(malformed("a mark where a value was expected")),
            }
        }
        self.push(Node::Tuple(ids))
    }

    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(PickleError::Protocol(p));
                    }
                }
                0x95 => {
                    // FRAME: a length hint; the frame must fit in the input.
                    let len = self.len_u64()?;
                    if len > self.input.len().saturating_sub(self.pos) {
                        return Err(PickleError::Truncated);
                    }
                }
                b'.' => return self.pop(),
                b'(' => self.push_slot(Slot::Mark)?,
                b'}' => self.push(Node::Dict(Vec::new()))?,
                b']' => self.push(Node::List(Vec::new()))?,
                b')' => self.push(Node::Tuple(Vec::new()))?,
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Node::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Node::Int(i64::from(v)))?;
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    self.long(n)?;
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n).map_err(|_| malformed("negative LONG4 length"))?;
                    self.long(n)?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(v))?;
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    self.string(n)?;
                }
                b'X' => {
                    let n = self.len_u32()?;
                    self.string(n)?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    self.string(n)?;
                }
                0x94 => {
                    let index =
                        u64::try_from(self.memo.len()).map_err(|_| PickleError::TooLarge)?;
                    self.memo_put(index)?;
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(u64::from(i))?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.memo_put(u64::from(i))?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(u64::from(i))?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.memo_get(u64::from(i))?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(d, &[k, v])?;
                }
                b'u' => {
                    let flat = self.pop_mark()?;
                    let d = self.top()?;
                    self.set_items(d, &flat)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.append(l, &[v])?;
                }
                b'e' => {
                    let values = self.pop_mark()?;
                    let l = self.top()?;
                    self.append(l, &values)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?;
                }
                0x85 => self.tuple(1)?,
                0x86 => self.tuple(2)?,
                0x87 => self.tuple(3)?,
                // GLOBAL, STACK_GLOBAL, REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX,
                // BUILD, PERSID, BINPERSID, EXT1/2/4.
                b'c' | 0x93 | b'R' | b'i' | b'o' | 0x81 | 0x92 | b'b' | b'P' | b'Q' | 0x82
                | 0x83 | 0x84 => return Err(PickleError::Forbidden(op)),
                _ => return Err(PickleError::Unsupported(op)),
            }
        }
    }

    fn value(
        &self,
        id: usize,
        depth: usize,
        budget: &mut usize,
    ) -> Result<PickleValue, PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError::TooDeep);
        }
        *budget = budget.checked_sub(1).ok_or(PickleError::TooLarge)?;
        let deeper = depth.saturating_add(1);
        let node = self.nodes.get(id).ok_or(malformed("unknown value"))?;
        Ok(match node {
            Node::None => PickleValue::None,
            Node::Bool(b) => PickleValue::Bool(*b),
            Node::Int(i) => PickleValue::Int(*i),
            Node::BigInt(b) => PickleValue::BigInt(b.clone()),
            Node::Float(f) => PickleValue::Float(*f),
            Node::Str(s) => PickleValue::Str(s.clone()),
            Node::List(items) => PickleValue::List(
                items
                    .iter()
                    .map(|&i| self.value(i, deeper, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Tuple(items) => PickleValue::Tuple(
                items
                    .iter()
                    .map(|&i| self.value(i, deeper, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Dict(items) => {
                let mut out: Vec<(PickleValue, PickleValue)> = Vec::with_capacity(items.len());
                for &(k, v) in items {
                    let k = self.value(k, deeper, budget)?;
                    let v = self.value(v, deeper, budget)?;
                    match out.iter_mut().find(|(ok, _)| *ok == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                PickleValue::Dict(out)
            }
        })
    }
}

/// Reads one pickle (bytes after its `STOP` are ignored, as `pickle.loads`
/// ignores them).
pub fn unpickle(input: &[u8]) -> Result<PickleValue, PickleError> {
    if input.len() > MAX_PICKLE_BYTES {
        return Err(PickleError::TooLarge);
    }
    let mut m = Machine {
        input,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        memo: BTreeMap::new(),
    };
    let root = m.run()?;
    let mut budget = MAX_VALUES;
    m.value(root, 0, &mut budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn s(v: &str) -> PickleValue {
        PickleValue::Str(v.into())
    }

    #[test]
    fn reads_plain_types() {
        // pickle.dumps({'a': [1, -2, 70000, True, None, 1.5, ('x',)]}, 5)
        let p = b"\x80\x05\x95\x29\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94(K\x01J\xfe\xff\xff\xffJp\x11\x01\x00\x88NG?\xf8\x00\x00\x00\x00\x00\x00\x8c\x01x\x94\x85\x94es.";
        let v = unpickle(p).unwrap();
        assert_eq!(
            v,
            PickleValue::Dict(vec![(
                s("a"),
                PickleValue::List(vec![
                    PickleValue::Int(1),
                    PickleValue::Int(-2),
                    PickleValue::Int(70000),
                    PickleValue::Bool(true),
                    PickleValue::None,
                    PickleValue::Float(1.5),
                    PickleValue::Tuple(vec![s("x")]),
                ])
            )])
        );
    }

    #[test]
    fn refuses_object_opcodes() {
        for op in [
            b'c', 0x93, b'R', b'i', b'o', 0x81, 0x92, b'b', b'P', b'Q', 0x82,
        ] {
            let p = [0x80, 5, op, b'.'];
            assert_eq!(unpickle(&p), Err(PickleError::Forbidden(op)));
        }
        // os.system('x') as protocol 0 would pickle it.
        let p = b"cos\nsystem\n(S'x'\ntR.";
        assert_eq!(unpickle(p), Err(PickleError::Forbidden(b'c')));
    }

    #[test]
    fn refuses_huge_lengths_and_truncation() {
        assert_eq!(
            unpickle(b"\x80\x05X\xff\xff\xff\xff"),
            Err(PickleError::Truncated)
        );
        assert_eq!(
            unpickle(b"\x80\x05\x8d\xff\xff\xff\xff\xff\xff\xff\xff"),
            Err(PickleError::Truncated)
        );
        assert_eq!(
            unpickle(b"\x80\x05\x95\xff\xff\xff\xff\xff\xff\xff\x7f}."),
            Err(PickleError::Truncated)
        );
        assert_eq!(unpickle(b"\x80\x05}"), Err(PickleError::Truncated));
        assert_eq!(unpickle(b""), Err(PickleError::Truncated));
        assert_eq!(unpickle(b"\x80\x06}."), Err(PickleError::Protocol(6)));
    }

    #[test]
    fn bounds_depth_and_memo_blowup() {
        let mut deep = vec![0x80, 5];
        deep.extend(core::iter::repeat_n(b']', 200));
        deep.extend(core::iter::repeat_n(b'a', 199));
        deep.push(b'.');
        assert_eq!(unpickle(&deep), Err(PickleError::TooDeep));
        // Each level is a list holding the previous level twice.
        let mut blow = vec![0x80, 5, b'K', 1, b'q', 0];
        for i in 0..40u8 {
            blow.extend([b']', b'(', b'h', i, b'h', i, b'e', b'q', i + 1]);
        }
        blow.push(b'.');
        assert_eq!(unpickle(&blow), Err(PickleError::TooLarge));
        // A list that holds itself.
        let cyc = b"\x80\x05]q\x00h\x00a.";
        assert_eq!(unpickle(cyc), Err(PickleError::TooDeep));
    }

    #[test]
    fn malformed_programs() {
        assert!(matches!(
            unpickle(b"\x80\x05."),
            Err(PickleError::Malformed(_))
        ));
        assert!(matches!(
            unpickle(b"\x80\x05h\x01."),
            Err(PickleError::Malformed(_))
        ));
        assert!(matches!(
            unpickle(b"\x80\x05K\x01K\x02s."),
            Err(PickleError::Malformed(_))
        ));
        assert!(matches!(
            unpickle(b"\x80\x05}]K\x01s."),
            Err(PickleError::Malformed(_))
        ));
        assert_eq!(
            unpickle(b"\x80\x05\x8c\x01\xff."),
            Err(PickleError::BadUtf8)
        );
        assert_eq!(
            unpickle(b"\x80\x05\x8f."),
            Err(PickleError::Unsupported(0x8f))
        );
    }

    #[test]
    fn long_ints() {
        assert_eq!(unpickle(b"\x8a\x01\xff."), Ok(PickleValue::Int(-1)));
        assert_eq!(unpickle(b"\x8a\x00."), Ok(PickleValue::Int(0)));
        assert_eq!(
            unpickle(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."),
            Ok(PickleValue::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 1]))
        );
    }

    #[test]
    fn later_duplicate_key_wins() {
        let p = b"}(\x8c\x01aK\x01\x8c\x01aK\x02u.";
        assert_eq!(
            unpickle(p),
            Ok(PickleValue::Dict(vec![(s("a"), PickleValue::Int(2))]))
        );
    }
}
