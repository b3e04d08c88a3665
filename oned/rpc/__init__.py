"""rpc: the XML-RPC front of oned (ReM, the Request Manager in OpenNebula's words)."""
