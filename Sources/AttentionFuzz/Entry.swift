import _FuzzDriver
import Foundation

// `attention-fuzz TARGET [libFuzzer arguments]`: the fuzz targets of the parsers and every input path
// a user's bytes reach (see FuzzTargets.swift). Build and run one with scripts/fuzz.sh TARGET [SECONDS];
// a plain `swift build` builds this program without libFuzzer, and then it only says so.
//
// SwiftPM links an executable's `main` to `<module>_main`: this function is the program's entry.
@_cdecl("AttentionFuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    let arguments = (0..<Int(argc)).map { argv[$0].map { String(cString: $0) } ?? "" }
    // The target is the first argument; libFuzzer's child processes (-merge, -fork) rerun the program
    // without it, and find it in the environment instead.
    let named = arguments.count >= 2 ? FuzzTarget(rawValue: arguments[1]) : nil
    let inherited = ProcessInfo.processInfo.environment["ATTENTION_FUZZ_TARGET"].flatMap(FuzzTarget.init(rawValue:))
    guard let target = named ?? inherited else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("usage: attention-fuzz TARGET [libFuzzer arguments]\n  TARGET: \(names)\n".utf8))
        return 64
    }
    do {
        try target.prepare()
    } catch {
        FileHandle.standardError.write(Data("attention-fuzz \(target.rawValue): \(error)\n".utf8))
        return 66
    }
    FuzzTarget.selected = target
    setenv("ATTENTION_FUZZ_TARGET", target.rawValue, 1)
    // libFuzzer sees the command line without the target's name.
    var rest: [UnsafeMutablePointer<CChar>?] = [argv[0]] + ((named == nil ? 1 : 2)..<Int(argc)).map { argv[$0] }
    return rest.withUnsafeMutableBufferPointer { buffer in
        attention_fuzz_run(Int32(buffer.count), buffer.baseAddress) { data, size in
            FuzzTarget.selected?.run(data.map { Data(bytes: $0, count: size) } ?? Data())
            return 0
        }
    }
}
