"""Kernel sweeps on a GPU cluster: shard plans (`shards`), Kubernetes/OpenShift manifests (`manifests`),
kubectl/oc driving (`kube`), shard archives on pod logs (`archive`), collection (`collect`) and merging
(`merge`). `cli` wires them into ``python -m kernels_bench jobs``. Nothing here imports torch."""
