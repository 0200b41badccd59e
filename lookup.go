package main

// oneHost is the host the lookup box proposes: the allowed host, when
// ALLOWED_HOSTS names exactly one.
func oneHost(hosts []string) string {
	if len(hosts) == 1 {
		return hosts[0]
	}
	return ""
}
