package admin

import (
	"net/http"
	"sort"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// tagSpend is one row of GET /spend/tags, as LiteLLM answers it.
type tagSpend struct {
	Tag      string  `json:"individual_request_tag"`
	LogCount int     `json:"log_count"`
	Spend    float64 `json:"total_spend"`
}

// spendTags is GET /spend/tags[?start_date=&end_date=]: spend and call count per request
// tag over the spend logs of the range (by default the last DefaultSpendLogDays days),
// highest spend first.
func (h *handler) spendTags(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	start, end, err := dateRange(q.Get("start_date"), q.Get("end_date"))
	if err != nil {
		return err
	}
	byTag := map[string]*tagSpend{}
	err = h.Store.EachSpendLog(r.Context(), store.SpendLogFilter{Start: start, End: end}, func(l store.SpendLog) {
		for _, tag := range l.RequestTags {
			t, ok := byTag[tag]
			if !ok {
				t = &tagSpend{Tag: tag}
				byTag[tag] = t
			}
			t.LogCount++
			t.Spend += l.Spend
		}
	})
	if err != nil {
		return err
	}
	out := make([]tagSpend, 0, len(byTag))
	for _, t := range byTag {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Spend != out[j].Spend {
			return out[i].Spend > out[j].Spend
		}
		return out[i].Tag < out[j].Tag
	})
	return writeJSON(w, out)
}
