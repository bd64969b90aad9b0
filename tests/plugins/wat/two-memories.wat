;; Two memories: the memory limit is per memory, so trueup takes modules of one memory only.
(module
  (memory (export "memory") 1)
  (memory $second 1))
