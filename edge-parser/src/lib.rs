//! Edge-side traffic measurement for Vantage: parse the access logs of the ingress in front of
//! the services into request rate, status mix and latency histograms.
