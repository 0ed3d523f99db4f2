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
// JSON) any body that two decoders could read differently: duplicate member names,
// also ones that differ only in case, and numbers out of float64's range.
func Scan(body []byte) (Scanned, error) {
	s := scanner{dec: json.NewDecoder(bytes.NewReader(body))}
	s.dec.UseNumber()
	if err := s.value(0, "", ""); err != nil {
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

type scanner struct {
	dec        *json.Decoder
	out        Scanned
	imageBytes int
}

// value reads one JSON value; key is its member name in the enclosing object ("" in an
// array).
func (s *scanner) value(depth int, path, key string) error {
	tok, err := s.dec.Token()
	if err != nil {
		return err
	}
	return s.rest(tok, depth, path, key)
}

// rest reads the rest of a value whose first token is tok.
func (s *scanner) rest(tok json.Token, depth int, path, key string) error {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return s.object(depth, path, key)
		}
		for i := 0; s.dec.More(); i++ {
			if err := s.value(depth+1, path+"["+strconv.Itoa(i)+"]", key); err != nil {
				return err
			}
		}
		_, err := s.dec.Token() // ']'
		return err
	case json.Number:
		if _, err := strconv.ParseFloat(string(t), 64); err != nil {
			return &NumberError{Path: orBody(path), Number: string(t)}
		}
	}
	return nil
}

// object reads an object's members after its '{'. It measures image parts: a string under
// image_url (OpenAI chat's {"url"} or the Responses API's string), and the data of a
// base64 source whose media type is an image (Anthropic's source, Gemini's inline_data).
func (s *scanner) object(depth int, path, key string) error {
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
			return &DuplicateKeyError{Path: path, Key: other, Other: name}
		}
		seen[f] = name
		if depth == 0 {
			s.out.Keys = append(s.out.Keys, name)
			if name == "tools" || name == "functions" {
				s.out.Prompt.Tools = true
			}
		}
		member := name
		if path != "" {
			member = path + "." + name
		}
		start := s.dec.InputOffset()
		if tok, err = s.dec.Token(); err != nil {
			return err
		}
		v, isString := tok.(string)
		if !isString {
			if err := s.rest(tok, depth+1, member, name); err != nil {
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
