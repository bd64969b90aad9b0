;; Reports, from finish, a finding with two key values for a rule keyed by one column.
(module
  (memory (export "memory") 4)
  (data (i32.const 8) "\00")
  (data (i32.const 16) "\00\7b\22\6e\61\6d\65\22\3a\22\77\72\6f\6e\67\2d\6b\65\79\22\2c\22\76\65\72\73\69\6f\6e\22\3a\22\30\22\2c\22\64\65\73\63\72\69\70\74\69\6f\6e\22\3a\22\22\2c\22\63\6f\6e\66\69\67\2d\73\63\68\65\6d\61\22\3a\7b\7d\7d")
  (data (i32.const 512) "\00\00\00\00\00")
  (data (i32.const 768) "\00\01\00\00\00\01\02\00\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "trueup_interface_version") (result i32) (i32.const 1))
  (func (export "trueup_input") (param i32) (result i32) (i32.const 1024))
  (func (export "trueup_describe") (result i64) (i64.const 68719476807))
  (func (export "trueup_start") (param i32) (result i64) (i64.const 34359738369))
  (func (export "trueup_check") (param i32) (result i64) (i64.const 2199023255557))
  (func (export "trueup_finish") (result i64) (i64.const 3298534883348)))
