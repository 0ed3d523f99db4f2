package store_test

import "strconv"

func fmtInt(i int) string { return strconv.Itoa(i) }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
