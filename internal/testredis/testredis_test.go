package testredis

import "testing"

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if r, err := s.Do("SET", "k", "v"); err != nil || r != "+OK" {
		t.Fatalf("SET: %q %v", r, err)
	}
	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	s.Restart()
	if r, err := s.Do("PING"); err != nil || r != "+PONG" {
		t.Fatalf("PING after restart: %q %v", r, err)
	}
}
