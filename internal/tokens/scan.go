package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DuplicateKeyError is a JSON object with two members whose names are equal or differ only
// in case: decoders disagree on which one counts (Go's takes the last, matching case
// loosely; Python's the last, matching exactly), so the gateway and the upstream could
// read different values.
type DuplicateKeyError struct {
	Path       string // where the object is ("messages[0]"; "" for the body itself)
	Key, Other string // the two spellings, in body order
}

func (e *DuplicateKeyError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	if e.Key == e.Other {
		return fmt.Sprintf("duplicate key %q%s", e.Key, where)
	}
	return fmt.Sprintf("duplicate key %q%s (also spelled %q): keys may not differ only in case", e.Other, where, e.Key)
}

// NumberError is a number a float64 cannot hold (1e400): decoders turn it into infinity
// or refuse it.
type NumberError struct{ Path, Number string }

func (e *NumberError) Error() string {
	return fmt.Sprintf("number %s at %s is out of range", e.Number, e.Path)
}

var errTrailing = errors.New("invalid character after the top-level value")

// Scanned is what Scan learned about a request body.
type Scanned struct {
	Prompt Prompt
	// Keys are the body's top-level member names, in order.
	Keys []string
}

// Scan reads a JSON request body once, strictly, and measures its billable prompt. It
// refuses (with a *DuplicateKeyError or *NumberError; a *json.SyntaxError for invalid
// JSON; ErrTooDeep) any body that two decoders could read differently: duplicate member
// names, also ones that differ only in case, and numbers out of float64's range. Its time
// and memory are linear in the body's size, however deep it nests.
func Scan(body []byte) (Scanned, error) {
	s := scanner{dec: json.NewDecoder(bytes.NewReader(body))}
	s.dec.UseNumber()
	if err := s.value(""); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Scanned{}, err
	}
	if _, err := s.dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errTrailing
		}
		return Scanned{}, err
	}
	s.out.Prompt.TextBytes = len(body) - s.imageBytes
	return s.out, nil
}

// MaxDepth is how deep a body may nest: encoding/json's own limit, which the gateway's
// decoding of the body enforces anyway.
const MaxDepth = 10000

// ErrTooDeep refuses a body that nests deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("the JSON nests deeper than %d levels", MaxDepth)

type scanner struct {
	dec        *json.Decoder
	out        Scanned
	imageBytes int
	// at is the path to the value being read, one step per level; it is spelled out only
	// for an error, so a deep body costs no more than a flat one.
	at []step
}

// step is one level of a path: an object member's name, or an array index.
type step struct {
	name  string
	index int
}

// path spells out where the value being read is: "messages[0].content"; "" for the body.
func (s *scanner) path() string {
	var b strings.Builder
	for i, st := range s.at {
		switch {
		case st.index >= 0:
			b.WriteString("[" + strconv.Itoa(st.index) + "]")
		case i > 0:
			b.WriteString("." + st.name)
		default:
			b.WriteString(st.name)
		}
	}
	return b.String()
}

// value reads one JSON value; key is its member name in the enclosing object ("" in an
// array).
func (s *scanner) value(key string) error {
	tok, err := s.dec.Token()
	if err != nil {
		return err
	}
	return s.rest(tok, key)
}

// rest reads the rest of a value whose first token is tok.
func (s *scanner) rest(tok json.Token, key string) error {
	switch t := tok.(type) {
	case json.Delim:
		if len(s.at) >= MaxDepth {
			return ErrTooDeep
		}
		if t == '{' {
			return s.object(key)
		}
		for i := 0; s.dec.More(); i++ {
			s.at = append(s.at, step{index: i})
			err := s.value(key)
			s.at = s.at[:len(s.at)-1]
			if err != nil {
				return err
			}
		}
		_, err := s.dec.Token() // ']'
		return err
	case json.Number:
		if _, err := strconv.ParseFloat(string(t), 64); err != nil {
			return &NumberError{Path: orBody(s.path()), Number: string(t)}
		}
	}
	return nil
}

// object reads an object's members after its '{'. It measures image parts: a string under
// image_url (OpenAI chat's {"url"} or the Responses API's string), and the data of a
// base64 source whose media type is an image (Anthropic's source, Gemini's inline_data).
func (s *scanner) object(key string) error {
	seen := map[string]string{}
	var mediaType string
	dataSize := -1
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		f := fold(name)
		if other, dup := seen[f]; dup {
			return &DuplicateKeyError{Path: s.path(), Key: other, Other: name}
		}
		seen[f] = name
		if len(s.at) == 0 {
			s.out.Keys = append(s.out.Keys, name)
			if name == "tools" || name == "functions" {
				s.out.Prompt.Tools = true
			}
		}
		start := s.dec.InputOffset()
		if tok, err = s.dec.Token(); err != nil {
			return err
		}
		v, isString := tok.(string)
		if !isString {
			s.at = append(s.at, step{name: name, index: -1})
			err := s.rest(tok, name)
			s.at = s.at[:len(s.at)-1]
			if err != nil {
				return err
			}
			continue
		}
		size := int(s.dec.InputOffset() - start)
		switch {
		case name == "image_url" || (key == "image_url" && name == "url"):
			s.out.Prompt.Images++
			s.imageBytes += size
		case name == "data":
			dataSize = size
		case name == "media_type" || name == "mime_type" || name == "mimeType":
			mediaType = v
		}
	}
	if dataSize >= 0 && strings.HasPrefix(mediaType, "image/") {
		s.out.Prompt.Images++
		s.imageBytes += dataSize
	}
	_, err := s.dec.Token() // '}'
	return err
}

func orBody(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// fold maps a name to the same string as every name that differs from it only in case
// (as strings.EqualFold compares: Unicode simple folding, so "K", "k" and the Kelvin sign
// are one key).
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii { // the least of an ASCII letter's case orbit is its upper case
		return strings.ToUpper(s)
	}
	var b strings.Builder
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}
