package admin

import (
	"net/http"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// tagSpend is one row of GET /spend/tags, as LiteLLM answers it.
type tagSpend struct {
	Tag      string  `json:"individual_request_tag"`
	LogCount int64   `json:"log_count"`
	Spend    float64 `json:"total_spend"`
}

// spendTags is GET /spend/tags[?start_date=&end_date=] (and /global/spend/tags): spend and
// call count per request tag over the range (by default the last 31 days, at most
// store.MaxDailySpendDays), highest spend first. It reads the tag rollups, and only the
// hours not rolled yet from the spend logs, so its cost does not grow with the calls of the
// range and its figures outlive the logs' retention. A day counts its store.RollupIDs
// highest-spending tags by name; the others are left out.
func (h *handler) spendTags(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	_, totals, err := h.rollupTotals(r, store.ScopeTag)
	if err != nil {
		return err
	}
	out := make([]tagSpend, 0, len(totals))
	for _, t := range totals {
		out = append(out, tagSpend{Tag: t.ID, LogCount: t.Calls, Spend: t.Spend})
	}
	return writeJSON(w, out)
}
