"""The lab: throwaway network namespaces, veth pairs and virtme-ng guests."""
