package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/modeldb"
	"github.com/llmgate/llmgate/internal/store"
)

// storedModel is a stored deployment as /model/new and /model/update answer it (LiteLLM's
// LiteLLM_ProxyModelTable row). litellm_params hold references, never secrets (modeldb.Check).
type storedModel struct {
	ModelID       string         `json:"model_id"`
	ModelName     string         `json:"model_name"`
	LiteLLMParams map[string]any `json:"litellm_params"`
	ModelInfo     map[string]any `json:"model_info"`
	CreatedAt     time.Time      `json:"created_at"`
	CreatedBy     string         `json:"created_by"`
	UpdatedAt     time.Time      `json:"updated_at"`
	UpdatedBy     string         `json:"updated_by"`
}

// modelsOn refuses the model routes unless general_settings.store_model_in_db is on.
func (h *handler) modelsOn() error {
	if !h.Config.GeneralSettings.StoreModelInDB {
		return invalid("Model management needs general_settings.store_model_in_db: true in config.yaml (LiteLLM: STORE_MODEL_IN_DB=True).")
	}
	return nil
}

// isConfigModel reports whether id names a model of config.yaml's model_list, which the
// model routes never change.
func (h *handler) isConfigModel(id string) bool {
	for _, d := range h.Config.ModelList {
		if d.ModelInfo.ID == id {
			return true
		}
	}
	return false
}

// modelNew answers POST /model/new: stores a deployment (model_name, litellm_params,
// model_info) under model_info.id or a new id.
func (h *handler) modelNew(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.modelsOn(); err != nil {
		return err
	}
	var raw map[string]any
	if err := decode(w, r, h.bodyLimit, &raw); err != nil {
		return err
	}
	info, _ := raw["model_info"].(map[string]any)
	if info == nil {
		info = map[string]any{}
	}
	id, _ := info["id"].(string)
	if id == "" {
		id = uuid.NewString()
	}
	if h.isConfigModel(id) {
		return invalid(fmt.Sprintf("Model id %q is a model of config.yaml; choose another id.", id))
	}
	info["id"] = id
	raw["model_info"] = info
	now := h.Now().UTC()
	m, err := h.storable(raw, id)
	if err != nil {
		return err
	}
	m.CreatedAt, m.CreatedBy, m.UpdatedAt, m.UpdatedBy = now, p.UserID, now, p.UserID
	// Retried: every model write bumps one version item, so concurrent writes conflict.
	if err := store.Retry(r.Context(), func() error { return h.Store.CreateModel(r.Context(), m) }); err != nil {
		if errors.Is(err, store.ErrExists) {
			return invalid(fmt.Sprintf("A model with id %q already exists; use /model/update to change it.", id))
		}
		return err
	}
	h.modelsChanged()
	return writeJSON(w, answerModel(m, raw))
}

// storable checks a deployment and turns it into the item to store.
func (h *handler) storable(raw map[string]any, id string) (*store.StoredModel, error) {
	d, err := modeldb.Check(raw)
	if err != nil {
		return nil, invalid(err.Error())
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("encode model %s: %w", id, err)
	}
	return &store.StoredModel{ID: id, ModelName: d.ModelName, Deployment: string(b)}, nil
}

// modelUpdate answers POST /model/update (the id in model_info.id) and PATCH
// /model/{id}/update: the fields given replace the stored ones; in litellm_params and
// model_info each given key replaces that key, and null removes it.
func (h *handler) modelUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.modelsOn(); err != nil {
		return err
	}
	var change map[string]any
	if err := decode(w, r, h.bodyLimit, &change); err != nil {
		return err
	}
	id := r.PathValue("id")
	if id == "" {
		info, _ := change["model_info"].(map[string]any)
		id, _ = info["id"].(string)
	}
	if id == "" {
		return invalid("model_info.id is required: the id of the model to update.")
	}
	if h.isConfigModel(id) {
		return invalid(fmt.Sprintf("Model %q is defined in config.yaml and cannot be changed through the API; edit config.yaml.", id))
	}
	var out map[string]any
	err := store.Retry(r.Context(), func() error {
		old, err := h.Store.GetModel(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound(fmt.Sprintf("Model with id=%s not found in the database.", id))
		}
		if err != nil {
			return err
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(old.Deployment), &raw); err != nil {
			return fmt.Errorf("decode stored model %s: %w", id, err)
		}
		merge(raw, change)
		info, _ := raw["model_info"].(map[string]any)
		if info == nil {
			info = map[string]any{}
			raw["model_info"] = info
		}
		info["id"] = id // the id is the item's, never changed by an update
		m, err := h.storable(raw, id)
		if err != nil {
			return err
		}
		m.CreatedAt, m.CreatedBy = old.CreatedAt, old.CreatedBy
		m.UpdatedAt, m.UpdatedBy = h.Now().UTC(), p.UserID
		if err := h.Store.ReplaceModel(r.Context(), old, m); err != nil {
			return err
		}
		out = answerModel(m, raw)
		return nil
	})
	if err != nil {
		return err
	}
	h.modelsChanged()
	return writeJSON(w, out)
}

// merge applies an update to a stored deployment: model_name replaces, litellm_params and
// model_info merge key by key (null removes the key).
func merge(dst, change map[string]any) {
	for k, v := range change {
		sub, isMap := v.(map[string]any)
		if k != "litellm_params" && k != "model_info" || !isMap {
			if v == nil {
				delete(dst, k)
			} else {
				dst[k] = v
			}
			continue
		}
		cur, _ := dst[k].(map[string]any)
		if cur == nil {
			cur = map[string]any{}
		}
		for sk, sv := range sub {
			if sv == nil {
				delete(cur, sk)
			} else {
				cur[sk] = sv
			}
		}
		dst[k] = cur
	}
}

// modelDelete answers POST /model/delete {"id": ...}. Models of config.yaml are not
// deleted (as LiteLLM, which deletes only database models).
func (h *handler) modelDelete(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := h.modelsOn(); err != nil {
		return err
	}
	var req struct {
		ID string `json:"id"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if req.ID == "" {
		return invalid("id is required: the model_info.id of the model to delete.")
	}
	if h.isConfigModel(req.ID) {
		return invalid(fmt.Sprintf("Model %q is defined in config.yaml and cannot be deleted through the API; edit config.yaml.", req.ID))
	}
	if err := store.Retry(r.Context(), func() error { return h.Store.DeleteModel(r.Context(), req.ID) }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(fmt.Sprintf("Model with id=%s not found in the database.", req.ID))
		}
		return err
	}
	h.modelsChanged()
	return writeJSON(w, map[string]string{"message": fmt.Sprintf("Model: %s deleted successfully", req.ID)})
}

// modelsChanged tells this instance's router to read the stored models at its next request.
func (h *handler) modelsChanged() {
	if h.ModelsChanged != nil {
		h.ModelsChanged()
	}
}

func answerModel(m *store.StoredModel, raw map[string]any) map[string]any {
	lp, _ := raw["litellm_params"].(map[string]any)
	info, _ := raw["model_info"].(map[string]any)
	return object(storedModel{
		ModelID: m.ID, ModelName: m.ModelName, LiteLLMParams: maps.Clone(lp), ModelInfo: maps.Clone(info),
		CreatedAt: m.CreatedAt, CreatedBy: m.CreatedBy, UpdatedAt: m.UpdatedAt, UpdatedBy: m.UpdatedBy,
	})
}
