package admin

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// maxSpendLogs caps the logs one GET /spend/logs returns (newest first), so an answer fits
// a Lambda response.
const maxSpendLogs = 5000

// spendLogs is GET /spend/logs with LiteLLM's filters: api_key (raw key or hash),
// user_id, request_id (the call id or the response's id), start_date and end_date (YYYY-MM-DD, both days included) and
// summarize (default true: with a date range, spend per day). Admins see every log; other
// callers see their own user's logs (or, for a key without a user, their key's), as
// LiteLLM forces user_id for internal users.
func (h *handler) spendLogs(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q := r.URL.Query()
	for _, id := range []string{"user_id", "api_key"} {
		if err := checkID(id, q.Get(id)); err != nil {
			return err
		}
	}
	if err := checkIDUpTo("request_id", q.Get("request_id"), maxResponseIDBytes); err != nil {
		return err
	}
	if uid := q.Get("user_id"); uid != "" {
		if err := mayAct(r, p, target{user: uid}, forbidden("You can only view the spend logs of your own user.")); err != nil {
			return err
		}
	}
	f := store.SpendLogFilter{UserID: q.Get("user_id"), Limit: maxSpendLogs}
	if k := q.Get("api_key"); k != "" {
		f.APIKey = auth.TokenOf(k)
	}
	if !p.IsProxyAdmin() && p.Role != auth.RoleProxyAdminViewer {
		if p.UserID != "" {
			f.UserID = p.UserID
		} else {
			f.APIKey = p.Token
		}
	}
	summarize := true
	if s := q.Get("summarize"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return badRequest("summarize must be true or false, got %q", s).WithParam("summarize")
		}
		summarize = v
	}
	start, end, err := dateRange(q.Get("start_date"), q.Get("end_date"))
	if err != nil {
		return err
	}
	if id := q.Get("request_id"); id != "" {
		if call, ok := h.ids.CallOf(id); ok {
			id = call // a response id llmgate answered with names its call
		}
		l, err := h.Store.GetSpendLog(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return writeJSON(w, []store.SpendLog{})
		case err != nil:
			return err
		case !visible(l, f) || (!start.IsZero() && (l.StartTime.Before(start) || l.StartTime.After(end))):
			return writeJSON(w, []store.SpendLog{})
		}
		return writeJSON(w, logsJSON([]store.SpendLog{*l}))
	}
	f.Start, f.End = start, end
	if q.Has("cursor") {
		return h.spendLogsAfter(w, r, f)
	}
	if !start.IsZero() && summarize {
		return h.spendByDay(w, r, f, end)
	}
	logs, err := h.Store.SpendLogs(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, logsJSON(logs))
}

// spendLogsAfter is /spend/logs?cursor=[&page_size=] (llmgate's own; "" for the first page):
// one page of the logs the filters select (default 50, at most 1000), newest first, and
// next_cursor (null after the last), so a console pages through millions of logs a page
// at a time instead of the newest maxSpendLogs.
func (h *handler) spendLogsAfter(w http.ResponseWriter, r *http.Request, f store.SpendLogFilter) error {
	q := r.URL.Query()
	size, err := intParam(q.Get("page_size"), 50, 1, 1000, "page_size")
	if err != nil {
		return err
	}
	if f.Start.IsZero() && f.APIKey == "" && f.UserID == "" {
		// The date index is read a day at a time: keep to the default window.
		f.Start = h.Now().AddDate(0, 0, -store.DefaultSpendLogDays)
	}
	logs, next, err := h.Store.SpendLogsAfter(r.Context(), f, q.Get("cursor"), size)
	if errors.Is(err, store.ErrBadCursor) {
		return badCursor()
	}
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"logs": logsJSON(logs), "next_cursor": nullable(next)})
}

// maxSpendLogDays bounds a date range: the store reads logs one day at a time and the
// summary has an entry per day, so a range to the year 9999 ran out of memory.
const maxSpendLogDays = 366

// dateRange parses start_date and end_date: both or neither, at most maxSpendLogDays days
// apart. The range covers the end date.
func dateRange(from, to string) (time.Time, time.Time, error) {
	if from == "" || to == "" {
		return time.Time{}, time.Time{}, nil
	}
	start, err := time.Parse(time.DateOnly, from)
	if err != nil {
		return time.Time{}, time.Time{}, badRequest("start_date must be YYYY-MM-DD, got %q", from).WithParam("start_date")
	}
	end, err := time.Parse(time.DateOnly, to)
	if err != nil {
		return time.Time{}, time.Time{}, badRequest("end_date must be YYYY-MM-DD, got %q", to).WithParam("end_date")
	}
	if end.Before(start) {
		return time.Time{}, time.Time{}, badRequest("end_date %s is before start_date %s", to, from).WithParam("end_date")
	}
	if end.Sub(start) >= maxSpendLogDays*24*time.Hour {
		return time.Time{}, time.Time{}, badRequest("start_date to end_date spans more than %d days; ask for a shorter range", maxSpendLogDays).WithParam("end_date")
	}
	return start, end.Add(24*time.Hour - time.Microsecond), nil
}

// visible reports whether a log passes the caller's key and user filters.
func visible(l *store.SpendLog, f store.SpendLogFilter) bool {
	return (f.APIKey == "" || l.APIKey == f.APIKey) && (f.UserID == "" || l.User == f.UserID)
}

// logsJSON gives logs LiteLLM's empty values instead of nulls.
func logsJSON(logs []store.SpendLog) []store.SpendLog {
	out := make([]store.SpendLog, len(logs))
	for i, l := range logs {
		if l.RequestTags == nil {
			l.RequestTags = []string{}
		}
		if l.Metadata == nil {
			l.Metadata = map[string]any{}
		}
		out[i] = l
	}
	return out
}

// spendByDay is LiteLLM's summarized answer: per day (oldest first) the total spend, the
// spend per key hash (as top-level fields), per user and per model, then zero days up to
// the end date.
func (h *handler) spendByDay(w http.ResponseWriter, r *http.Request, f store.SpendLogFilter, end time.Time) error {
	days := map[string]map[string]any{}
	err := h.Store.EachSpendLog(r.Context(), f, func(l store.SpendLog) {
		day := l.StartTime.UTC().Format(time.DateOnly)
		d, ok := days[day]
		if !ok {
			d = map[string]any{"spend": 0.0, "users": map[string]float64{}, "models": map[string]float64{}}
			days[day] = d
		}
		d["spend"] = d["spend"].(float64) + l.Spend
		keySpend, _ := d[l.APIKey].(float64)
		d[l.APIKey] = keySpend + l.Spend
		d["users"].(map[string]float64)[l.User] += l.Spend
		d["models"].(map[string]float64)[l.Model] += l.Spend
	})
	if err != nil {
		return err
	}
	out := []map[string]any{}
	if len(days) == 0 {
		return writeJSON(w, out)
	}
	dates := make([]string, 0, len(days))
	for d := range days {
		dates = append(dates, d)
	}
	sort.Strings(dates)
	for _, d := range dates {
		days[d]["startTime"] = d
		out = append(out, days[d])
	}
	last, _ := time.Parse(time.DateOnly, dates[len(dates)-1])
	for day := last.AddDate(0, 0, 1); !day.After(end); day = day.AddDate(0, 0, 1) {
		out = append(out, map[string]any{"startTime": day.Format(time.DateOnly), "spend": 0, "users": map[string]float64{}, "models": map[string]float64{}})
	}
	return writeJSON(w, out)
}
