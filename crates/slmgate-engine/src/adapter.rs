//! LoRA adapters on a shared base model: loaded through llama.cpp's adapter API into the
//! engine's own model, picked per request, swapped live.
//!
//! llama.cpp applies adapters per *context*, and the engine decodes every sequence in one
//! context: the batch loop decodes each step once per adapter in use (sequences without one
//! form their own group), setting the context's adapter before each decode. A slot's KV cache
//! remembers the adapter it was computed under, so a prompt prefix is only reused under the
//! same adapter.
//!
//! An [`Adapter`] is loaded on the engine thread (llama.cpp registers it with the model). A
//! request holds an `Arc` of the adapter it was prepared with: replacing an adapter (a new
//! file under the same name) serves new requests with the new weights while sequences in
//! flight finish on the old ones, and the old adapter is freed, on the engine thread, once the
//! last of them ends.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_sys_2 as sys;

use crate::EngineError;

/// An adapter to load: its name (what requests ask for), file and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSpec {
    pub name: String,
    pub path: PathBuf,
    /// Multiplies the adapter's `alpha / rank` scaling (1.0: as trained).
    pub scale: f32,
}

/// What is loaded under a name.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterInfo {
    pub name: String,
    pub path: PathBuf,
    pub scale: f32,
    /// Counts loads in this engine: a swap gives the name a new generation.
    pub generation: u64,
    /// Milliseconds since the epoch when this generation was loaded.
    pub loaded_ms: i64,
}

/// A file's identity for change detection: modification time and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: m.modified().ok(),
            len: m.len(),
        })
    }
}

/// An adapter's llama.cpp handle, sent to the engine thread to be freed there.
pub(crate) struct Buried(NonNull<sys::llama_adapter_lora>);

// SAFETY: the pointer is only dereferenced by llama.cpp on the engine thread, which owns the
// model the adapter belongs to; moving the address between threads is harmless.
unsafe impl Send for Buried {}

/// A loaded adapter. Dropping the last handle hands its llama.cpp object to the engine
/// thread, which frees it between steps (never while the context still uses it).
pub struct Adapter {
    pub(crate) info: AdapterInfo,
    pub(crate) stamp: Option<FileStamp>,
    ptr: NonNull<sys::llama_adapter_lora>,
    grave: Sender<Buried>,
}

// SAFETY: llama.cpp reads an adapter's tensors during decodes on the engine thread only; the
// handle itself is an immutable address plus metadata.
unsafe impl Send for Adapter {}
unsafe impl Sync for Adapter {}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter").field("info", &self.info).finish()
    }
}

impl Adapter {
    /// Unique in the engine (the generation): groups and cache reuse compare it.
    pub(crate) fn id(&self) -> u64 {
        self.info.generation
    }

    /// The crate's handle for `LlamaContext::lora_adapter_set`.
    pub(crate) fn handle(&self) -> LlamaLoraAdapter {
        // SAFETY: `LlamaLoraAdapter` is `#[repr(transparent)]` over the crate's `Ptr`, which
        // is `#[repr(transparent)]` over `NonNull<llama_adapter_lora>`; it has no `Drop`, so
        // this copy frees nothing.
        unsafe {
            std::mem::transmute::<NonNull<sys::llama_adapter_lora>, LlamaLoraAdapter>(self.ptr)
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        // The engine thread frees it; if that thread is gone, the model frees its adapters.
        let _ = self.grave.send(Buried(self.ptr));
    }
}

/// The adapters of one engine by name, shared by request preparation (which resolves a name)
/// and the engine thread (which loads and replaces them).
#[derive(Default)]
pub(crate) struct AdapterTable {
    by_name: RwLock<HashMap<String, Arc<Adapter>>>,
    generations: AtomicU64,
    /// The file a failed load read, by name: not retried until the file changes again.
    failed: std::sync::Mutex<HashMap<String, Option<FileStamp>>>,
}

impl AdapterTable {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Adapter>> {
        self.read().get(name).cloned()
    }

    pub(crate) fn list(&self) -> Vec<Arc<Adapter>> {
        let mut v: Vec<Arc<Adapter>> = self.read().values().cloned().collect();
        v.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        v
    }

    /// Puts a loaded adapter under its name; the one it replaces lives on in the requests
    /// that hold it.
    pub(crate) fn insert(&self, a: Arc<Adapter>) {
        self.failed_files().remove(&a.info.name);
        self.by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(a.info.name.clone(), a);
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        self.by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some()
    }

    /// Remembers that `spec`'s file, as it is now, could not be loaded.
    pub(crate) fn failed(&self, spec: &AdapterSpec) {
        self.failed_files()
            .insert(spec.name.clone(), FileStamp::of(&spec.path));
    }

    /// Whether the last load of `name` failed on the file as it is now.
    pub(crate) fn failed_on(&self, name: &str, now: Option<FileStamp>) -> bool {
        self.failed_files().get(name).is_some_and(|s| *s == now)
    }

    fn failed_files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<FileStamp>>> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Adapter>>> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner())
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Loads `spec` into `model`. Runs on the engine thread (llama.cpp registers the adapter
/// with the model, which the context's graph sizing reads).
pub(crate) fn load(
    model: &LlamaModel,
    table: &AdapterTable,
    spec: &AdapterSpec,
    grave: &Sender<Buried>,
) -> Result<Arc<Adapter>, EngineError> {
    let err = |reason: String| EngineError::Adapter {
        name: spec.name.clone(),
        reason,
    };
    if !(spec.scale.is_finite()) {
        return Err(err("scale must be a finite number".into()));
    }
    if !spec.path.is_file() {
        return Err(err(format!("file not found: {}", spec.path.display())));
    }
    let stamp = FileStamp::of(&spec.path);
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    check_header(&spec.path, &arch).map_err(err)?;
    let path = spec
        .path
        .to_str()
        .and_then(|p| CString::new(p).ok())
        .ok_or_else(|| err("the path is not valid UTF-8 text".into()))?;
    // SAFETY: `LlamaModel` is `#[repr(transparent)]` over the crate's `Ptr`, itself
    // `#[repr(transparent)]` over `NonNull<llama_model>`: reading it yields the model's
    // address. llama.cpp mutates only the model's adapter registry, on this thread, which
    // is the only one that decodes with the model.
    let raw = unsafe { *(model as *const LlamaModel as *const *mut sys::llama_model) };
    // SAFETY: a live model and a NUL-terminated path; llama.cpp returns NULL on failure
    // (header fields whose types it would assert on were checked above).
    let ptr = unsafe { sys::llama_adapter_lora_init(raw, path.as_ptr()) };
    let ptr = NonNull::new(ptr).ok_or_else(|| {
        err("llama.cpp could not apply it to this model: its tensors do not match the base model's names or shapes (an adapter for another model?), or the file is incomplete".into())
    })?;
    Ok(Arc::new(Adapter {
        info: AdapterInfo {
            name: spec.name.clone(),
            path: spec.path.clone(),
            scale: spec.scale,
            generation: table.next_generation(),
            loaded_ms: now_ms(),
        },
        stamp,
        ptr,
        grave: grave.clone(),
    }))
}

/// Frees adapters whose last handle is gone. The caller makes sure the context no longer
/// uses any of them.
pub(crate) fn bury(grave: &Receiver<Buried>) -> usize {
    let mut n = 0;
    while let Ok(Buried(p)) = grave.try_recv() {
        // SAFETY: the adapter was made by `llama_adapter_lora_init` on this model, its last
        // `Adapter` handle is gone, and the context is not set to it (the batch loop holds a
        // handle to the adapter it set).
        unsafe { sys::llama_adapter_lora_free(p.as_ptr()) };
        n += 1;
    }
    n
}

/// Reads the GGUF header and checks what llama.cpp would otherwise assert on (aborting the
/// process) or refuse without a reason: the file type, the adapter type, the architecture,
/// the type of `alpha`, and that there are LoRA tensors.
fn check_header(path: &Path, arch: &str) -> Result<(), String> {
    let c = path
        .to_str()
        .and_then(|p| CString::new(p).ok())
        .ok_or("the path is not valid UTF-8 text")?;
    let params = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: a NUL-terminated path; with `ctx` NULL no tensor data is read.
    let g = unsafe { sys::gguf_init_from_file(c.as_ptr(), params) };
    if g.is_null() {
        return Err("not a readable GGUF file".into());
    }
    struct Gguf(*mut sys::gguf_context);
    impl Drop for Gguf {
        fn drop(&mut self) {
            // SAFETY: made by gguf_init_from_file, freed once.
            unsafe { sys::gguf_free(self.0) }
        }
    }
    let g = Gguf(g);
    let key = |k: &str| -> Option<i64> {
        let k = CString::new(k).ok()?;
        // SAFETY: a live context and a NUL-terminated key.
        let id = unsafe { sys::gguf_find_key(g.0, k.as_ptr()) };
        (id >= 0).then_some(id)
    };
    let string = |k: &str| -> Result<Option<String>, String> {
        let Some(id) = key(k) else { return Ok(None) };
        // SAFETY: `id` is a valid key index of this context.
        if unsafe { sys::gguf_get_kv_type(g.0, id) } != sys::GGUF_TYPE_STRING {
            return Err(format!("`{k}` must be a string"));
        }
        // SAFETY: the key holds a string (checked above); the context owns it.
        let s = unsafe { CStr::from_ptr(sys::gguf_get_val_str(g.0, id)) };
        Ok(Some(s.to_string_lossy().into_owned()))
    };
    match string("general.type")?.as_deref() {
        Some("adapter") => {}
        other => {
            return Err(format!(
                "general.type is {other:?}, not \"adapter\": this is not an adapter file"
            ))
        }
    }
    match string("adapter.type")?.as_deref() {
        Some("lora") => {}
        other => {
            return Err(format!(
                "adapter.type is {other:?}; only \"lora\" is supported"
            ))
        }
    }
    let file_arch = string("general.architecture")?.unwrap_or_default();
    if file_arch != arch {
        return Err(format!(
            "the adapter is for architecture {file_arch:?}, the model is {arch:?}"
        ));
    }
    if let Some(id) = key("adapter.lora.alpha") {
        // SAFETY: `id` is a valid key index of this context.
        if unsafe { sys::gguf_get_kv_type(g.0, id) } != sys::GGUF_TYPE_FLOAT32 {
            return Err("`adapter.lora.alpha` must be a float32".into());
        }
    }
    // SAFETY: a live context.
    let n = unsafe { sys::gguf_get_n_tensors(g.0) };
    let mut lora = 0;
    for i in 0..n {
        // SAFETY: `i` is a valid tensor index; the name is owned by the context.
        let name = unsafe { CStr::from_ptr(sys::gguf_get_tensor_name(g.0, i)) };
        let name = name.to_string_lossy();
        if name.ends_with(".lora_a") || name.ends_with(".lora_b") {
            lora += 1;
        }
    }
    if lora == 0 {
        return Err("the file has no LoRA tensors (names ending in .lora_a / .lora_b)".into());
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
