//! The embedding model's input-token table, memory-mapped from `model.safetensors` (no copy:
//! only the rows a prompt touches are paged in, and the pages are shared with the page cache).

use std::path::Path;

pub(crate) struct TokenTable {
    map: memmap2::Mmap,
    /// Byte offset of the table's data in the file.
    offset: usize,
    rows: usize,
    dims: usize,
}

const NAMES: [&str; 2] = [
    "embeddings.word_embeddings.weight",
    "bert.embeddings.word_embeddings.weight",
];

impl TokenTable {
    pub(crate) fn open(path: &Path, dims: usize) -> Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: the weights file is mapped read-only and not modified while loaded (the same
        // assumption candle's own memory-mapped loading makes).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("mmap: {e}"))?;
        let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| e.to_string())?;
        let view = NAMES
            .iter()
            .find_map(|n| st.tensor(n).ok())
            .ok_or("model.safetensors has no word_embeddings table")?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(format!("word_embeddings are {:?}, not F32", view.dtype()));
        }
        let (rows, d) = match view.shape() {
            [r, d] => (*r, *d),
            other => return Err(format!("word_embeddings have shape {other:?}")),
        };
        if d != dims {
            return Err(format!(
                "word_embeddings have {d} dimensions, the model {dims}"
            ));
        }
        let offset = view.data().as_ptr() as usize - map.as_ptr() as usize;
        Ok(Self {
            map,
            offset,
            rows,
            dims,
        })
    }

    /// Adds token `id`'s vector to `acc` (ids outside the table are skipped).
    pub(crate) fn add_row(&self, id: usize, acc: &mut [f32]) {
        if id >= self.rows {
            return;
        }
        let start = self.offset + id * self.dims * 4;
        let Some(bytes) = self.map.get(start..start + self.dims * 4) else {
            return;
        };
        for (a, c) in acc.iter_mut().zip(bytes.chunks_exact(4)) {
            *a += f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
}
