package proxy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConnectionNamesOfTheFinalHead(t *testing.T) {
	for _, tt := range []struct {
		head string
		want []string
	}{
		{"HTTP/1.1 200 OK\r\nConnection: X-A, close\r\nconnection: x-b\r\nX-A: 1\r\n\r\nbody Connection: X-Body", []string{"X-A", "x-b"}},
		{"HTTP/1.1 100 Continue\r\nConnection: X-Interim\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close, X-Final\r\n\r\n", []string{"X-Final"}},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", nil},
		{"HTTP/1.1 200 OK\r\nConnection: X-Cut", []string{"X-Cut"}}, // a head cut short
		{"", nil},
	} {
		assert.Equal(t, tt.want, connectionNames([]byte(tt.head)), tt.head)
	}
}
