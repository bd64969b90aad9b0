;; Speaks the interface, describes itself, then answers every batch with a reply that
;; points outside its memory.
(module
  (memory (export "memory") 4)
  (data (i32.const 16) "\00{\22name\22:\22garbage\22,\22version\22:\220\22,\22description\22:\22\22,\22config-schema\22:{}}")
  (data (i32.const 8) "\00")
  (func (export "trueup_interface_version") (result i32) (i32.const 1))
  (func (export "trueup_input") (param i32) (result i32) (i32.const 1024))
  (func (export "trueup_describe") (result i64) (i64.const 0x1000000045))
  (func (export "trueup_start") (param i32) (result i64) (i64.const 0x0000000800000001))
  (func (export "trueup_check") (param i32) (result i64) (i64.const 0x7fff000000000010))
  (func (export "trueup_finish") (result i64) (i64.const 0x0000000800000001)))
