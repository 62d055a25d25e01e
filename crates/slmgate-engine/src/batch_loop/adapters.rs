//! The batch loop's LoRA adapters: which adapters a step's sequences run under, setting the
//! context to one before its group's decode, loading one between steps, and letting go of
//! those no sequence uses.

use std::sync::Arc;

use super::BatchLoop;
use crate::adapter::{self, Adapter, AdapterTable, Buried};
use crate::EngineError;

pub(super) struct LoopAdapters {
    pub(super) table: Arc<AdapterTable>,
    pub(super) grave_tx: std::sync::mpsc::Sender<Buried>,
    pub(super) grave_rx: std::sync::mpsc::Receiver<Buried>,
    /// The adapter the context applies now (held, so it cannot be freed while set).
    pub(super) current: Option<Arc<Adapter>>,
}

impl BatchLoop<'_> {
    /// The adapters the active sequences run under (`None`: the base model), each once,
    /// starting with the one the context is set to (one switch per step when two alternate).
    pub(super) fn groups(&self) -> Vec<Option<Arc<Adapter>>> {
        let mut out: Vec<Option<Arc<Adapter>>> = Vec::with_capacity(1);
        let current = self.adapters.as_ref().and_then(|l| l.current.clone());
        let current_id = current.as_ref().map_or(0, |a| a.id());
        let mut current_used = false;
        for a in self.slots.iter().filter_map(|s| s.active.as_ref()) {
            let id = a.adapter_id();
            if id == current_id {
                current_used = true;
            } else if !out.iter().any(|g| g.as_ref().map_or(0, |x| x.id()) == id) {
                out.push(a.job.req.adapter.clone());
            }
        }
        if current_used || out.is_empty() {
            out.insert(0, current);
        }
        out
    }

    /// Sets the context to `group`'s adapter (none: the base model) if it is not already.
    pub(super) fn use_adapter(&mut self, group: Option<Arc<Adapter>>) {
        let Some(l) = self.adapters.as_mut() else {
            return;
        };
        let want = group.as_ref().map_or(0, |a| a.id());
        let have = l.current.as_ref().map_or(0, |a| a.id());
        if want == have {
            return;
        }
        let result = match (&group, &l.current) {
            (Some(a), _) => self
                .ctx
                .lora_adapter_set(&mut a.handle(), a.info.scale)
                .map_err(|e| e.to_string()),
            (None, Some(old)) => self
                .ctx
                .lora_adapter_remove(&mut old.handle())
                .map_err(|e| e.to_string()),
            (None, None) => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot set the context's LoRA adapter");
        }
        l.current = group;
    }

    /// Loads an adapter between steps (llama.cpp registers it with the model) and puts it
    /// under its name.
    pub(super) fn load_adapter(
        &mut self,
        spec: &adapter::AdapterSpec,
    ) -> Result<adapter::AdapterInfo, EngineError> {
        let Some(l) = self.adapters.as_ref() else {
            return Err(EngineError::Stopped);
        };
        let a = adapter::load(self.model, &l.table, spec, &l.grave_tx).inspect_err(|_| {
            l.table.failed(spec);
        })?;
        let info = a.info.clone();
        l.table.insert(a);
        tracing::info!(adapter = %info.name, path = %info.path.display(), generation = info.generation, "LoRA adapter loaded");
        Ok(info)
    }

    /// After a step: the context lets go of an adapter no sequence uses any more, and
    /// adapters whose last handle is gone are freed.
    pub(super) fn release_adapters(&mut self) {
        let Some(l) = self.adapters.as_mut() else {
            return;
        };
        if let Some(cur) = &l.current {
            let id = cur.id();
            let in_use = self
                .slots
                .iter()
                .filter_map(|s| s.active.as_ref())
                .any(|a| a.adapter_id() == id);
            if !in_use {
                if let Err(e) = self.ctx.lora_adapter_remove(&mut cur.handle()) {
                    tracing::error!(error = %e, "cannot clear the context's LoRA adapter");
                }
                l.current = None;
            }
        }
        adapter::bury(&l.grave_rx);
    }
}
