package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/llmgate/llmgate/internal/openai"
)

// Opt is an optional request field that tells "absent" from "null" from a value, as
// LiteLLM's update endpoints do (absent leaves a field alone, null clears it).
type Opt[T any] struct {
	Set  bool // present in the body (as a value or null)
	Null bool // present as null (or "" for a number, as LiteLLM reads max_budget)
	V    T
}

// Has reports whether the field carries a value.
func (o Opt[T]) Has() bool { return o.Set && !o.Null }

// Ptr returns the value as a pointer, nil when absent or null.
func (o Opt[T]) Ptr() *T {
	if !o.Has() {
		return nil
	}
	v := o.V
	return &v
}

// Of returns an Opt holding v.
func Of[T any](v T) Opt[T] { return Opt[T]{Set: true, V: v} }

// UnmarshalJSON reads null, a value, and for numbers also a numeric string ("10") or ""
// (null), which LiteLLM's pydantic models accept.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	switch p := any(&o.V).(type) {
	case *float64:
		f, null, err := number(b)
		o.Null, *p = null, f
		return err
	case *int64:
		f, null, err := number(b)
		if err == nil && f != float64(int64(f)) {
			err = fmt.Errorf("expected an integer, got %v", f)
		}
		o.Null, *p = null, int64(f)
		return err
	}
	if err := json.Unmarshal(b, &o.V); err != nil {
		return fmt.Errorf("expected %s", typeName(reflect.TypeOf(o.V)))
	}
	return nil
}

// MarshalJSON writes the value, or null.
func (o Opt[T]) MarshalJSON() ([]byte, error) {
	if !o.Has() {
		return []byte("null"), nil
	}
	return json.Marshal(o.V)
}

func number(b []byte) (float64, bool, error) {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		return f, false, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, false, errors.New("expected a number")
	}
	if strings.TrimSpace(s) == "" {
		return 0, true, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, false, fmt.Errorf("expected a number, got %q", s)
	}
	return f, false, nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeName(t.Elem()), "a "), "an ") + "s"
	case reflect.Map:
		return "an object"
	case reflect.Interface:
		return "a value"
	default:
		return "an object"
	}
}

// badRequest is a 400 for a request that cannot be used.
func badRequest(format string, args ...any) *openai.Error {
	return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(format, args...))
}

// decode reads a JSON object body into v (at most limit bytes). Malformed JSON, a field of
// the wrong type (the field is named), trailing data or an oversized body become 400/413.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return openai.Errorf(http.StatusRequestEntityTooLarge, openai.TypeInvalidRequest,
				fmt.Sprintf("Request body is larger than the limit of %d bytes", limit))
		}
		return badRequest("Could not read the request body: %v", err)
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return badRequest("Invalid JSON in request body at offset %d: %v", syn.Offset, syn)
		}
		return badRequest("Request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		// Find the field that failed, to say which one it is.
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
			probe := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if ferr := json.Unmarshal(one, probe); ferr != nil {
				return badRequest("Invalid value for '%s': %s", k, fieldError(ferr)).WithParam(k)
			}
		}
		return badRequest("Invalid request body: %v", err)
	}
	return nil
}

func fieldError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "expected " + typeName(te.Type) + ", got " + te.Value
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "json: ") {
		msg = msg[i+2:]
	}
	return msg
}

// decodeStrict decodes b into v, refusing unknown fields (to tell shapes apart).
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// sentFields are the JSON names of the Opt fields of a request struct (embedded structs
// included) that the body carried, in field order.
func sentFields(req any) []string {
	var names []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			if f.Anonymous && fv.Kind() == reflect.Struct {
				walk(fv)
				continue
			}
			if set := fv.FieldByName("Set"); fv.Kind() == reflect.Struct && set.IsValid() && set.Bool() {
				names = append(names, strings.Split(f.Tag.Get("json"), ",")[0])
			}
		}
	}
	walk(reflect.ValueOf(req).Elem())
	return names
}
