//! The check plugin for the core-module ABI (no imports). The host calls `alloc(len)`, writes
//! a batch there and calls a check with (ptr, len); the check returns `ptr << 32 | len` of
//! its output, valid until the next call.
//!
//! Batch: u32 row count, u32 column count, then per row per column a value: a tag byte
//! (0 null, 1 int i64, 2 float f64, 3 decimal, 4 text, 5 bool u8, 6 timestamp, 7 bytes;
//! strings and bytes are a u32 length and the bytes). Output: u32 finding count, then per
//! finding a u32 key length, the key values, a u32 message length and the message.
//! All integers are little-endian.

#[path = "../../shared/checks.rs"]
mod checks;

use std::cell::UnsafeCell;

enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Decimal(&'a str),
    Text(&'a str),
    Bool(bool),
    Timestamp(&'a str),
    Bytes(&'a [u8]),
}

/// The input and output buffers, reused from call to call.
struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

struct Global(UnsafeCell<Buffers>);

// SAFETY: wasm32-unknown-unknown without the atomics feature has a single thread.
unsafe impl Sync for Global {}

static BUFFERS: Global = Global(UnsafeCell::new(Buffers {
    input: Vec::new(),
    output: Vec::new(),
}));

fn buffers() -> &'static mut Buffers {
    // SAFETY: one thread, and no export holds the reference past its return.
    unsafe { &mut *BUFFERS.0.get() }
}

#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: u32) -> u32 {
    let input = &mut buffers().input;
    input.clear();
    input.resize(len as usize, 0);
    input.as_mut_ptr() as u32
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        head
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n)
    }
    fn str(&mut self) -> &'a str {
        std::str::from_utf8(self.bytes()).unwrap()
    }
    fn value(&mut self) -> Value<'a> {
        match self.take(1)[0] {
            0 => Value::Null,
            1 => Value::Int(self.u64() as i64),
            2 => Value::Float(f64::from_bits(self.u64())),
            3 => Value::Decimal(self.str()),
            4 => Value::Text(self.str()),
            5 => Value::Bool(self.take(1)[0] != 0),
            6 => Value::Timestamp(self.str()),
            7 => Value::Bytes(self.bytes()),
            tag => panic!("bad tag {tag}"),
        }
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    count: u32,
}

impl Writer<'_> {
    fn bytes(&mut self, tag: u8, b: &[u8]) {
        self.out.push(tag);
        self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.out.extend_from_slice(b);
    }
    fn value(&mut self, v: &Value) {
        match *v {
            Value::Null => self.out.push(0),
            Value::Int(i) => {
                self.out.push(1);
                self.out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                self.out.push(2);
                self.out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Decimal(s) => self.bytes(3, s.as_bytes()),
            Value::Text(s) => self.bytes(4, s.as_bytes()),
            Value::Bool(b) => self.out.extend_from_slice(&[5, b as u8]),
            Value::Timestamp(s) => self.bytes(6, s.as_bytes()),
            Value::Bytes(b) => self.bytes(7, b),
        }
    }
    fn finding(&mut self, key: &[Value], message: &str) {
        self.count += 1;
        self.out
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        key.iter().for_each(|v| self.value(v));
        self.out
            .extend_from_slice(&(message.len() as u32).to_le_bytes());
        self.out.extend_from_slice(message.as_bytes());
    }
}

/// Decodes the batch at (ptr, len), calls `check` on each row, returns the encoded findings.
fn run(ptr: u32, len: u32, mut check: impl FnMut(&[Value], &mut Writer)) -> u64 {
    let bufs = buffers();
    assert_eq!(ptr as usize, bufs.input.as_ptr() as usize);
    let mut r = Reader {
        buf: &bufs.input[..len as usize],
    };
    let (rows, cols) = (r.u32(), r.u32() as usize);
    bufs.output.clear();
    bufs.output.extend_from_slice(&[0; 4]);
    let mut w = Writer {
        out: &mut bufs.output,
        count: 0,
    };
    let mut row = Vec::with_capacity(cols);
    for _ in 0..rows {
        row.clear();
        row.extend((0..cols).map(|_| r.value()));
        check(&row, &mut w);
    }
    let count = w.count;
    bufs.output[..4].copy_from_slice(&count.to_le_bytes());
    (bufs.output.as_ptr() as u64) << 32 | bufs.output.len() as u64
}

fn id_of(row: &[Value]) -> i64 {
    match row.first() {
        Some(Value::Int(id)) => *id,
        _ => -1,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn check_trivial(ptr: u32, len: u32) -> u64 {
    run(ptr, len, |row, w| {
        let id = id_of(row);
        if checks::flag_id(id) {
            w.finding(&[Value::Int(id)], "flagged id");
        } else if row.iter().any(|v| matches!(v, Value::Null)) {
            w.finding(&[Value::Int(id)], "row has a null");
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn check_email(ptr: u32, len: u32) -> u64 {
    run(ptr, len, |row, w| {
        if let Some(Value::Text(s)) = row.get(1)
            && !checks::is_email(s)
        {
            let message = format!("not an email address: {s}");
            w.finding(&[Value::Int(id_of(row))], &message);
        }
    })
}
