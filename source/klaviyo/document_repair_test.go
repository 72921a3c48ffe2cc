package klaviyo

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// A name cut mid-character upstream must not cost the record: the invalid bytes become U+FFFD.
func TestDecodeRepairsInvalidUTF8InAttributes(t *testing.T) {
	body := []byte("{\"data\":[{\"type\":\"review\",\"id\":\"r1\",\"attributes\":{\"author\":\"Ana \xe5.\"}}]}")
	doc, err := decodeDocument(bytes.NewReader(body))
	require.NoError(t, err)
	require.Len(t, doc.Data, 1)
	require.Equal(t, "{\"author\":\"Ana \uFFFD.\"}", string(doc.Data[0].Attributes))
}
