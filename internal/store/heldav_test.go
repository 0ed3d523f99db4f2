package store_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store"
)

// A held entry's hand-written encoding is attributevalue.Marshal's, whatever its fields hold
// (zero or not, nil or empty lists): the entries are read back with attributevalue.Unmarshal,
// and a field added to heldEntry but not to its encoding fails here.
func TestHeldEntryEncodesAsAttributevalue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var h store.HeldEntry
		fill(rng, reflect.ValueOf(&h).Elem())
		got, err := store.HeldEntryAV(&h)
		if err != nil {
			t.Fatal(err)
		}
		want, err := attributevalue.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entry %d %+v:\nencoded %s\nMarshal %s", i, h, show(got), show(want))
		}
	}
}

// fill sets v to a random value: each part zero about a third of the time, lists nil, empty
// or of a few elements.
func fill(rng *rand.Rand, v reflect.Value) {
	if !v.CanSet() || v.Kind() != reflect.Struct && rng.IntN(3) == 0 {
		return // unexported fields are not encoded
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(rng, v.Field(i))
		}
	case reflect.Slice:
		n := rng.IntN(4)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fill(rng, v.Index(i))
		}
	case reflect.String:
		v.SetString([]string{"", "a", "KEY#x", "gpt-4o"}[rng.IntN(4)])
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(rng.Int64N(1<<40) - 1<<39)
	case reflect.Float64:
		v.SetFloat([]float64{1e-12, 0.1, 0.0025, 3, 1e21, -2.5, rng.Float64()}[rng.IntN(7)])
	default:
		panic("fill: no case for " + v.Type().String())
	}
}

// show renders an attribute value for a failure message.
func show(av types.AttributeValue) string {
	var out any
	if err := attributevalue.Unmarshal(av, &out); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%v", out)
}
