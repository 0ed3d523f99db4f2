package responseid

import (
	"strings"
	"testing"
)

func TestCodec_SealOpenRoundTrip(t *testing.T) {
	c := New("sk-master")
	ref := Ref{Deployment: "resp-1", ID: "resp_upstream123", Key: "abc", Team: "team-a"}
	id := c.Seal(ref)
	if !strings.HasPrefix(id, Prefix) || strings.Contains(id, "resp_upstream123") || strings.Contains(id, "team-a") {
		t.Fatalf("sealed id %q shows what it holds", id)
	}
	got, ok := c.Open(id)
	if !ok || got != ref {
		t.Fatalf("Open = %+v, %v; want %+v", got, ok, ref)
	}
	if again := c.Seal(ref); again == id {
		t.Error("two seals of one ref gave the same id: the nonce is not random")
	}
}

func TestCodec_OpenRefusesWhatItDidNotSeal(t *testing.T) {
	c := New("sk-master")
	id := c.Seal(Ref{Deployment: "d", ID: "resp_1", Key: "k"})
	flipped := []byte(id)
	flipped[len(flipped)-5] ^= 1
	for name, in := range map[string]string{
		"other secret":  New("sk-other").Seal(Ref{Deployment: "d", ID: "resp_1", Key: "k"}),
		"upstream id":   "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
		"no prefix":     strings.TrimPrefix(id, Prefix),
		"tampered":      string(flipped),
		"truncated":     id[:len(Prefix)+8],
		"empty":         "",
		"not base64url": Prefix + "!!!",
	} {
		if r, ok := c.Open(in); ok {
			t.Errorf("%s: Open(%q) = %+v, want refused", name, in, r)
		}
	}
}

func TestRef_ReadableBy(t *testing.T) {
	r := Ref{Deployment: "d", ID: "i", Key: "key-a", Team: "team-a"}
	noTeam := Ref{Deployment: "d", ID: "i", Key: "key-a"}
	master := Ref{Deployment: "d", ID: "i"}
	for _, tc := range []struct {
		name      string
		ref       Ref
		key, team string
		want      bool
	}{
		{"same key", r, "key-a", "team-a", true},
		{"same key, no team", noTeam, "key-a", "", true},
		{"other key of the team", r, "key-b", "team-a", true},
		{"other key, other team", r, "key-b", "team-b", false},
		{"other key, no team", r, "key-b", "", false},
		{"teamless owner, teamless other key", noTeam, "key-b", "", false},
		{"made with the master key", master, "key-b", "", false},
	} {
		if got := tc.ref.ReadableBy(tc.key, tc.team); got != tc.want {
			t.Errorf("%s: ReadableBy = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFor_KeepsTheUpstreamsPrefix(t *testing.T) {
	const call = "019af3c2-7d4e-7a1b-9c3d-2e5f6a7b8c9d"
	for _, tc := range []struct{ upstream, want string }{
		{"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "chatcmpl-" + call},
		{"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "cmpl-" + call},
		{"msg_013Zva2CMHLNnXjNJJKqJ2EF", "msg_" + call},
		{"modr-0d9740456c391e43c445bf0f010940c7", "modr-" + call},
		{"gen-1742381211-X8dFydFzOf7c", "gen-" + call},
		{"3f8a2b1c-9d4e-4f5a-8b6c-7d8e9f0a1b2c", call}, // a UUID: no prefix
		{"Chatcmpl-abc", call},                         // not lowercase
		{"-abc", call},
		{"averyveryverylongprefix-abc", call}, // past maxIDPrefix
		{"", call},
	} {
		if got := For(tc.upstream, call); got != tc.want {
			t.Errorf("For(%q) = %q, want %q", tc.upstream, got, tc.want)
		}
	}
}

func TestCodec_CallOf(t *testing.T) {
	c := New("sk-master")
	call := "019af3c2-7d4e-7a1b-9c3d-2e5f6a7b8c9d"
	for _, tc := range []struct {
		name, id string
		want     string // "" for none
	}{
		{"a call id", call, call},
		{"a chat id", For("chatcmpl-abc", call), call},
		{"a message id", For("msg_01abc", call), call},
		{"a sealed id", c.Seal(Ref{Deployment: "d", ID: "resp_1", Key: "k", Call: call}), call},
		{"a sealed id of an older build (no call)", c.Seal(Ref{Deployment: "d", ID: "resp_1", Key: "k"}), ""},
		{"another secret's sealed id", New("sk-other").Seal(Ref{Deployment: "d", ID: "resp_1", Call: call}), ""},
		{"an upstream's id", "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", ""},
		{"a prefix For never keeps", "Chat-" + call, ""},
		{"a UUIDv4", "chatcmpl-3f8a2b1c-9d4e-4f5a-8b6c-7d8e9f0a1b2c", ""},
		{"uppercase call id", strings.ToUpper(call), ""},
		{"empty", "", ""},
	} {
		got, ok := c.CallOf(tc.id)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: CallOf(%q) = %q, %v; want %q", tc.name, tc.id, got, ok, tc.want)
		}
	}
}
