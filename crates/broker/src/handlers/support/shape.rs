//! A structural pre-check of request bodies, run before kafka-protocol
//! decodes them.
//!
//! Why: kafka-protocol preallocates every array from the length the client
//! sends (`Vec::with_capacity(n)`), so a 20-byte frame announcing 2^31
//! elements makes it ask for ~150 GB and abort the whole process. Each
//! handler therefore declares its request's [`Shape`] (the fields that
//! matter for framing, with the versions they exist in), and [`check`]
//! walks the body without allocating: every length must fit in the bytes
//! that are actually there. A body that passes may still be rejected by
//! the decoder; one that fails closes the connection like any other
//! malformed request. The walk must read the bytes exactly as the decoder
//! will, or its checks land on the wrong bytes: in particular the decoder
//! reads a tagged field it knows by its type and ignores the size the field
//! declares, so shapes declare those fields ([`Kind::Tagged`]) and a
//! declared size must match the content.
//!
//! In: a shape, a version and the body bytes. Out: `Ok(())` or why not.

/// The wire type of one field.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uuid,
    /// A string, nullable or not (compact in flexible versions).
    String,
    /// Bytes, nullable or not (an `i32` length, compact in flexible
    /// versions): a produced record batch.
    Bytes,
    /// An array of `i32` (e.g. broker ids).
    Int32Array,
    /// An array of `i64` (e.g. producer ids).
    Int64Array,
    /// An array of strings.
    StringArray,
    /// An array of structs with these fields.
    StructArray(&'static [Field]),
    /// One struct with these fields.
    Struct(&'static [Field]),
    /// A tagged field (flexible versions) that kafka-protocol decodes by
    /// its type, here `kind`, rather than by the size it declares. Walked
    /// among the struct's tagged fields, not in order; its declared size
    /// must be exactly its content's.
    Tagged(u32, &'static Kind),
}

/// A field and the versions it is on the wire in.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub min_version: i16,
    pub max_version: i16,
    pub kind: Kind,
}

/// A field present from `min_version` to `max_version`.
pub const fn field(min_version: i16, max_version: i16, kind: Kind) -> Field {
    Field {
        min_version,
        max_version,
        kind,
    }
}

/// A request body's layout.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// The first flexible version (compact lengths, tagged fields);
    /// `i16::MAX` if none.
    pub flexible_from: i16,
    pub fields: &'static [Field],
}

/// Why a body does not fit its shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed body at byte {at}: {what}")]
pub struct ShapeError {
    pub at: usize,
    pub what: &'static str,
}

/// Walks `body` as `shape` at `version`.
pub fn check(shape: &Shape, version: i16, body: &[u8]) -> Result<(), ShapeError> {
    let mut walker = Walker {
        body,
        pos: 0,
        version,
        flexible: version >= shape.flexible_from,
    };
    walker.structure(shape.fields)
}

struct Walker<'a> {
    body: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
}

impl Walker<'_> {
    fn fail(&self, what: &'static str) -> ShapeError {
        ShapeError { at: self.pos, what }
    }

    fn skip(&mut self, n: usize) -> Result<(), ShapeError> {
        if self.body.len() - self.pos < n {
            return Err(self.fail("a field runs past the end of the frame"));
        }
        self.pos += n;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ShapeError> {
        let bytes = self
            .body
            .get(self.pos..self.pos + N)
            .ok_or_else(|| self.fail("a field runs past the end of the frame"))?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u32, ShapeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.fixed::<1>()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fail("a varint is longer than 5 bytes"))
    }

    /// A length or count: `None` for null.
    fn length(&mut self, non_flexible_i16: bool) -> Result<Option<usize>, ShapeError> {
        let length = if self.flexible {
            i64::from(self.varint()?) - 1
        } else if non_flexible_i16 {
            i64::from(i16::from_be_bytes(self.fixed()?))
        } else {
            i64::from(i32::from_be_bytes(self.fixed()?))
        };
        match length {
            -1 => Ok(None),
            n if n < -1 => Err(self.fail("a negative length")),
            n => {
                let n = usize::try_from(n).map_err(|_| self.fail("a length too large"))?;
                // Every element or byte takes at least one byte.
                if n > self.body.len() - self.pos {
                    return Err(self.fail("a length larger than the rest of the frame"));
                }
                Ok(Some(n))
            }
        }
    }

    fn string(&mut self) -> Result<(), ShapeError> {
        if let Some(n) = self.length(true)? {
            self.skip(n)?;
        }
        Ok(())
    }

    /// The tagged fields that end a struct in flexible versions. One the
    /// decoder knows (declared in `fields`) is walked as its kind and must
    /// fill exactly its declared size: the decoder ignores that size, so a
    /// lying one would leave it reading bytes this walk never checked.
    /// Others are skipped by their size, as the decoder does.
    fn tagged_fields(&mut self, fields: &[Field]) -> Result<(), ShapeError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.varint()?;
        for _ in 0..count {
            let tag = self.varint()?;
            let size = self.varint()? as usize;
            let known = fields.iter().find_map(|f| match f.kind {
                Kind::Tagged(t, kind) if t == tag && self.present(f) => Some(*kind),
                _ => None,
            });
            match known {
                Some(kind) => {
                    let end = self.pos.saturating_add(size);
                    self.kind(kind)?;
                    if self.pos != end {
                        return Err(self.fail("a tagged field's size is not its content's"));
                    }
                }
                None => self.skip(size)?,
            }
        }
        Ok(())
    }

    fn present(&self, f: &Field) -> bool {
        (f.min_version..=f.max_version).contains(&self.version)
    }

    fn structure(&mut self, fields: &[Field]) -> Result<(), ShapeError> {
        for f in fields {
            if !self.present(f) {
                continue;
            }
            self.kind(f.kind)?;
        }
        self.tagged_fields(fields)
    }

    fn kind(&mut self, kind: Kind) -> Result<(), ShapeError> {
        match kind {
            Kind::Bool | Kind::Int8 => self.skip(1)?,
            Kind::Int16 => self.skip(2)?,
            Kind::Int32 => self.skip(4)?,
            Kind::Int64 => self.skip(8)?,
            Kind::Uuid => self.skip(16)?,
            Kind::String => self.string()?,
            Kind::Bytes => {
                if let Some(n) = self.length(false)? {
                    self.skip(n)?;
                }
            }
            Kind::Int32Array => {
                if let Some(n) = self.length(false)? {
                    self.skip(n.saturating_mul(4))?;
                }
            }
            Kind::Int64Array => {
                if let Some(n) = self.length(false)? {
                    self.skip(n.saturating_mul(8))?;
                }
            }
            Kind::StringArray => {
                for _ in 0..self.length(false)?.unwrap_or(0) {
                    self.string()?;
                }
            }
            Kind::StructArray(inner) => {
                for _ in 0..self.length(false)?.unwrap_or(0) {
                    self.structure(inner)?;
                }
            }
            Kind::Struct(inner) => self.structure(inner)?,
            // Walked with the struct's tagged fields.
            Kind::Tagged(..) => {}
        }
        Ok(())
    }
}
