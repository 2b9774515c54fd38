//! Just enough of ELF64 (little-endian) to tell how a program is linked: its program interpreter
//! (`PT_INTERP`, the dynamic loader a kernel starts first) and the libraries it needs (`DT_NEEDED`).
//! A static binary has neither; a static-pie one still has a `PT_DYNAMIC` segment, for its own
//! relocations, but no NEEDED entry in it.

use std::fmt;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const EM_X86_64: u16 = 62;

/// How a program is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linkage {
    /// The program interpreter (e.g. `/lib64/ld-linux-x86-64.so.2`), if any.
    pub interpreter: Option<String>,
    /// The shared libraries it needs, in order.
    pub needed: Vec<String>,
    /// Whether it has a dynamic section at all (true for static-pie).
    pub has_dynamic_section: bool,
}

impl Linkage {
    /// Reads an x86_64 ELF64 file.
    ///
    /// # Errors
    /// A text saying why the bytes are not a readable x86_64 ELF64 file.
    pub fn read(bytes: &[u8]) -> Result<Linkage, String> {
        let elf = Elf { bytes };
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("not an ELF file".into());
        }
        if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
            return Err("not a little-endian ELF64 file".into());
        }
        if elf.u16(18)? != EM_X86_64 {
            return Err(format!("machine {} is not x86_64", elf.u16(18)?));
        }
        let (phoff, phentsize, phnum) = (elf.u64(32)?, elf.u16(54)?, elf.u16(56)?);
        let headers: Vec<Segment> =
            (0..u64::from(phnum)).map(|i| elf.segment(phoff + i * u64::from(phentsize))).collect::<Result<_, _>>()?;
        let interpreter = match headers.iter().find(|h| h.kind == PT_INTERP) {
            Some(h) => {
                let raw = elf.slice(h.offset, h.filesz)?;
                Some(String::from_utf8_lossy(raw).trim_end_matches('\0').to_owned())
            }
            None => None,
        };
        let Some(dynamic) = headers.iter().find(|h| h.kind == PT_DYNAMIC) else {
            return Ok(Linkage { interpreter, needed: Vec::new(), has_dynamic_section: false });
        };
        let mut needed_offsets = Vec::new();
        let mut strtab_address = None;
        for i in 0..dynamic.filesz / 16 {
            let at = dynamic.offset + i * 16;
            let (tag, value) = (elf.u64(at)?, elf.u64(at + 8)?);
            match tag {
                DT_NULL => break,
                DT_NEEDED => needed_offsets.push(value),
                DT_STRTAB => strtab_address = Some(value),
                _ => {}
            }
        }
        let mut needed = Vec::new();
        if !needed_offsets.is_empty() {
            let strtab = strtab_address.ok_or("NEEDED entries without a string table")?;
            let strtab = file_offset(&headers, strtab).ok_or("the string table is outside every loaded segment")?;
            for offset in needed_offsets {
                needed.push(elf.c_string(strtab + offset)?);
            }
        }
        Ok(Linkage { interpreter, needed, has_dynamic_section: true })
    }

    /// Whether the kernel can run it with nothing else on the file system.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }
}

impl fmt::Display for Linkage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interpreter = self.interpreter.as_deref().unwrap_or("none");
        let needed = if self.needed.is_empty() { "none".to_owned() } else { self.needed.join(", ") };
        let kind = match (self.is_static(), self.has_dynamic_section) {
            (true, true) => "static-pie",
            (true, false) => "static",
            (false, _) => "dynamic",
        };
        write!(f, "{kind}: program interpreter {interpreter}; NEEDED {needed}")
    }
}

#[derive(Debug)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// The file offset of a virtual address, through the PT_LOAD segment that maps it.
fn file_offset(headers: &[Segment], address: u64) -> Option<u64> {
    headers
        .iter()
        .filter(|h| h.kind == PT_LOAD)
        .find(|h| address >= h.vaddr && address < h.vaddr + h.filesz)
        .map(|h| h.offset + (address - h.vaddr))
}

struct Elf<'a> {
    bytes: &'a [u8],
}

impl Elf<'_> {
    fn slice(&self, at: u64, len: u64) -> Result<&[u8], String> {
        let start = usize::try_from(at).map_err(|_| "offset out of range")?;
        let end = start.checked_add(usize::try_from(len).map_err(|_| "length out of range")?).ok_or("overflow")?;
        self.bytes.get(start..end).ok_or_else(|| format!("truncated at byte {start}"))
    }

    fn u16(&self, at: u64) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.slice(at, 2)?.try_into().map_err(|_| "u16")?))
    }

    fn u32(&self, at: u64) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.slice(at, 4)?.try_into().map_err(|_| "u32")?))
    }

    fn u64(&self, at: u64) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.slice(at, 8)?.try_into().map_err(|_| "u64")?))
    }

    fn segment(&self, at: u64) -> Result<Segment, String> {
        Ok(Segment {
            kind: self.u32(at)?,
            offset: self.u64(at + 8)?,
            vaddr: self.u64(at + 16)?,
            filesz: self.u64(at + 32)?,
        })
    }

    fn c_string(&self, at: u64) -> Result<String, String> {
        let start = usize::try_from(at).map_err(|_| "offset out of range")?;
        let rest = self.bytes.get(start..).ok_or("string outside the file")?;
        let end = rest.iter().position(|&b| b == 0).ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}
