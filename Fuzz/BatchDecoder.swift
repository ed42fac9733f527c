// libFuzzer target: the batch decoder (PROTOCOL.md §4). Built and run by scripts/fuzz.
// Any input either is refused with an error or decodes to a batch that re-encodes to the
// very same bytes (canonical-only decoding); anything else, or a crash, is a finding.
import TandemCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBatchDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let batch = try? ChangeBatch(decoding: bytes) {
        precondition(batch.encoded() == bytes, "a decoded batch re-encodes to other bytes")
        for change in batch.changes {
            precondition((try? Change(canonicalBytes: change.canonicalBytes)) == change, "a change does not survive its own encoding")
        }
    }
    return 0
}
