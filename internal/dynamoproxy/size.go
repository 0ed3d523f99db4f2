package dynamoproxy

import (
	"encoding/base64"
	"strings"
)

// itemSize is an item's size as DynamoDB counts it for capacity: for each attribute, the
// UTF-8 length of its name plus the size of its value. Strings count their UTF-8 bytes,
// binaries their bytes, numbers 1 byte per two significant digits plus 1, booleans and
// nulls 1 byte; lists and maps 3 bytes plus 1 byte per element plus their elements (a map's
// keys count as names); sets the sum of their elements.
func itemSize(it attrs) int {
	n := 0
	for name, v := range it {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v any) int {
	m, ok := v.(map[string]any)
	if !ok {
		return 0
	}
	n := 0
	for typ, x := range m {
		switch typ {
		case "S":
			s, _ := x.(string)
			n += len(s)
		case "N":
			s, _ := x.(string)
			n += numberSize(s)
		case "B":
			s, _ := x.(string)
			n += base64.StdEncoding.DecodedLen(len(s))
		case "BOOL", "NULL":
			n++
		case "SS", "NS", "BS":
			xs, _ := x.([]any)
			for _, e := range xs {
				s, _ := e.(string)
				switch typ {
				case "SS":
					n += len(s)
				case "NS":
					n += numberSize(s)
				default:
					n += base64.StdEncoding.DecodedLen(len(s))
				}
			}
		case "L":
			xs, _ := x.([]any)
			n += 3
			for _, e := range xs {
				n += 1 + valueSize(e)
			}
		case "M":
			xm, _ := x.(map[string]any)
			n += 3
			for k, e := range xm {
				n += 1 + len(k) + valueSize(e)
			}
		}
	}
	return n
}

// numberSize is 1 byte per two significant digits, plus 1.
func numberSize(s string) int {
	s = strings.TrimLeft(s, "+-")
	mant, _, _ := strings.Cut(strings.ToLower(s), "e")
	digits := strings.Replace(mant, ".", "", 1)
	digits = strings.TrimLeft(digits, "0")
	if strings.Contains(mant, ".") || digits != "" {
		digits = strings.TrimRight(digits, "0")
	}
	if digits == "" {
		return 1
	}
	return (len(digits)+1)/2 + 1
}

// render is a key attribute's value as text ("" when absent).
func render(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	for _, x := range m {
		if s, ok := x.(string); ok {
			return s
		}
	}
	return ""
}
