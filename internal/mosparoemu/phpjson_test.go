package mosparoemu

import (
	"testing"
)

func TestPHPToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty object", `{}`, `{}`},
		{"empty list", `[]`, `{}`},
		{"slash escaped", `{"a":"a/b"}`, `{"a":"a\/b"}`},
		{"non-ascii as utf-16", `{"n":"Jürgen €𝄞"}`, `{"n":"J\u00fcrgen \u20ac\ud834\udd1e"}`},
		{"controls", "{\"c\":\"\\u0001\\t\\n\\u007f\"}", "{\"c\":\"\\u0001\\t\\n\x7f\"}"},
		{"quotes and backslash", `{"q":"\"\\"}`, `{"q":"\"\\"}`},
		{"key order kept", `{"b":1,"a":2}`, `{"b":1,"a":2}`},
		{"duplicate key keeps first position last value", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{"list stays list", `{"l":[1,"x",true,null]}`, `{"l":[1,"x",true,null]}`},
		{"numeric keys in order are a list", `{"0":"a","1":"b"}`, `["a","b"]`},
		{"numeric keys out of order stay an object", `{"1":"a","0":"b"}`, `{"1":"a","0":"b"}`},
		{"nested empty array becomes object", `{"formData":[]}`, `{"formData":{}}`},
		{"textual [] replacement inside strings", `{"s":"x[]y"}`, `{"s":"x{}y"}`},
		{"float", `{"f":1.5,"g":1.0,"h":1e2}`, `{"f":1.5,"g":1.0,"h":100.0}`},
		{"big int becomes float", `{"i":123456789012345678901234}`, `{"i":1.2345678901234569e+23}`},
		{"int", `{"range":86400}`, `{"range":86400}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := phpJSONDecode([]byte(tt.in))
			if err != nil {
				t.Fatalf("phpJSONDecode(%s): %v", tt.in, err)
			}
			if got := string(phpToJSON(nil, &v)); got != tt.want {
				t.Errorf("toJson(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestPHPJSONDecodeRejects(t *testing.T) {
	for _, in := range []string{`"str"`, `12`, `{`, `{"a":1} x`, "{\"a\":\"\xff\"}", ``} {
		if _, err := phpJSONDecode([]byte(in)); err == nil {
			t.Errorf("phpJSONDecode(%q) succeeded, want error", in)
		}
	}
}

func TestPHPParseStr(t *testing.T) {
	arr := phpArr()
	for _, kv := range [][2]string{
		{"a.b c", "1"}, {"l[]", "x"}, {"l[]", "y"}, {"m[k][z]", "v"}, {"range", "5"}, {"range", "6"},
	} {
		phpParseStrSet(&arr, kv[0], kv[1])
	}
	got := string(phpToJSON(nil, &arr))
	want := `{"a_b_c":"1","l":["x","y"],"m":{"k":{"z":"v"}},"range":"6"}`
	if got != want {
		t.Errorf("parse_str result = %s, want %s", got, want)
	}
}

func TestPHPArrayMergeRenumbers(t *testing.T) {
	a, _ := phpJSONDecode([]byte(`{"x":"1","5":"a"}`))
	b, _ := phpJSONDecode([]byte(`{"x":"2","7":"b","y":"3"}`))
	m := phpArrayMerge(&a, &b)
	if got, want := string(phpToJSON(nil, &m)), `{"x":"2","0":"a","1":"b","y":"3"}`; got != want {
		t.Errorf("array_merge = %s, want %s", got, want)
	}
}

func TestPHPIntCast(t *testing.T) {
	for in, want := range map[string]int64{"86400": 86400, "12abc": 12, "abc": 0, " -3": -3, "": 0} {
		if got := phpIntCast(in); got != want {
			t.Errorf("phpIntCast(%q) = %d, want %d", in, got, want)
		}
	}
}

// FACTS 8.1 test vectors.
const (
	vecStatisticEmptySig = "63da73bc319a759586eb3682c96fc87d057d96c38aa6a57dee24155c60a2de6b"
	vecStatisticEmptyHdr = "Basic UFVCTElDS0VZX2V4YW1wbGU6NjNkYTczYmMzMTlhNzU5NTg2ZWIzNjgyYzk2ZmM4N2QwNTdkOTZjMzhhYTZhNTdkZWUyNDE1NWM2MGEyZGU2Yg=="
	vecStatisticRangeSig = "4d85688447e42140ab23f5f564c24672231e35e5d76e725f1370a075d78756d6"
	vecValidationSig     = "7d25abb8bc8bcf15927b2dee2514d35e992976a7b0d8d0f1ae6d790c3215691a"
	vecFormSig           = "c8ddad312beb8387c7ff6638594b250f0250023ae614286e247f6f67703b1303"
	vecRequestSig        = "15351cf038ea2b71ab61116fc7486ea5af8d640c83003e0c611b3fcb0024b3c6"
	vecVerificationSig   = "3a2116a6e85ab0800247659c8d5d899afc3efb3f021666e8b5e8899da8dcab98"
)

func TestFACTS81Vectors(t *testing.T) {
	if got := Sign(DemoPrivateKey, endpointStatistic, []byte("{}")); got != vecStatisticEmptySig {
		t.Errorf("Sign(by-date, {}) = %s, want %s", got, vecStatisticEmptySig)
	}
	if got := AuthorizationHeader(DemoPublicKey, vecStatisticEmptySig); got != vecStatisticEmptyHdr {
		t.Errorf("AuthorizationHeader = %s, want %s", got, vecStatisticEmptyHdr)
	}
	if got := Sign(DemoPrivateKey, endpointStatistic, []byte(`{"range":86400}`)); got != vecStatisticRangeSig {
		t.Errorf("Sign(by-date, range) = %s, want %s", got, vecStatisticRangeSig)
	}
	if got := HMACHex(DemoPrivateKey, "VALIDATIONTOKEN_example"); got != vecValidationSig {
		t.Errorf("validationSignature = %s, want %s", got, vecValidationSig)
	}
	form := phpArr()
	form.set("email", phpStr(sha256Hex("a/b@example.com")))
	form.set("name", phpStr(sha256Hex("John")))
	if got := HMACHex(DemoPrivateKey, string(phpToJSON(nil, &form))); got != vecFormSig {
		t.Errorf("formSignature = %s, want %s", got, vecFormSig)
	}
	body := verifyBody("SUBMITTOKEN_example", vecValidationSig, vecFormSig, map[string]string{
		"email": "a/b@example.com", "name": "John",
	})
	data, err := phpJSONDecode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(DemoPrivateKey, endpointVerify, phpToJSON(nil, &data)); got != vecRequestSig {
		t.Errorf("verify request signature = %s, want %s", got, vecRequestSig)
	}
	if got := HMACHex(DemoPrivateKey, vecValidationSig+vecFormSig); got != vecVerificationSig {
		t.Errorf("verificationSignature = %s, want %s", got, vecVerificationSig)
	}
}
