;; Reports the first row of every batch, with the text of its second column as the
;; finding's message, byte for byte: what a plugin that quotes a value does. For rules whose
;; query is `SELECT <integer>, <text>`, and small batches (the input sits at 1024, the reply
;; at 64 KiB). The CLI's hostile-value tests run it to show that a plugin's message reaches
;; people escaped and JSON exact.
(module
  (memory (export "memory") 4)
  (data (i32.const 8) "\00")
  (data (i32.const 16) "\00{\22name\22:\22echo-message\22,\22version\22:\220\22,\22description\22:\22\22,\22config-schema\22:{}}")
  (data (i32.const 768) "\00\00\00\00\00")
  (func (export "trueup_interface_version") (result i32) (i32.const 1))
  (func (export "trueup_input") (param i32) (result i32) (i32.const 1024))
  (func (export "trueup_describe") (result i64) (i64.const 0x100000004a))
  (func (export "trueup_start") (param i32) (result i64) (i64.const 0x0000000800000001))
  ;; The batch at 1024: u32 rows, u32 columns, then row 0: an int (tag 1, 8 bytes) at 1032,
  ;; a text (tag 4, u32 length, bytes) at 1041.
  (func (export "trueup_check") (param $len i32) (result i64)
    (local $text i32)
    (if (i32.eqz (i32.load (i32.const 1024)))
      (then (return (i64.const 0x0000030000000005))))
    (local.set $text (i32.load (i32.const 1042)))
    ;; The reply at 65536: ok, one finding of row 0, the message, no detail.
    (i32.store8 (i32.const 65536) (i32.const 0))
    (i32.store (i32.const 65537) (i32.const 1))
    (i32.store8 (i32.const 65541) (i32.const 0))
    (i32.store (i32.const 65542) (i32.const 0))
    (i32.store (i32.const 65546) (local.get $text))
    (memory.copy (i32.const 65550) (i32.const 1046) (local.get $text))
    (i32.store (i32.add (i32.const 65550) (local.get $text)) (i32.const 0))
    (i64.or
      (i64.const 0x0001000000000000)
      (i64.extend_i32_u (i32.add (i32.const 18) (local.get $text)))))
  (func (export "trueup_finish") (result i64) (i64.const 0x0000030000000005)))
