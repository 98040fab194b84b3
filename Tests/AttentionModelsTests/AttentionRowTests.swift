import Attention
import AttentionModels
import AttentionTestSupport
import Foundation
import Testing

/// One token's attention through the caches is the row of the whole maps.
@Suite("A token's attention row", .serialized)
struct AttentionRowTests {
    @Test("attentions(_:row:) gives row `query` of every layer's maps, for each head, on SmolLM2 and Gemma 3 (whose windowed layers mask)",
          arguments: ["SmolLM2", "Gemma 3"])
    func rowOfTheMaps(model name: String) throws {
        let model = try name == "Gemma 3" ? Gemma3ModelTests.model(.asStored) : SmolLM2Tests.model(.asStored)
        let ids = (0..<23).map { ($0 * 37 + 11) % 2000 }
        let options = AttentionOptions(quantizedPrecision: .float32)
        let maps = try model.attentions(ids, options: options)
        let c = model.configuration
        for query in [0, 1, 9, 22] {
            let rows = try model.attentions(ids, row: query, options: options)
            #expect(rows.count == c.layers && rows.allSatisfy { $0.shape == [c.heads, query + 1] })
            var worst: Float = 0
            for (layer, row) in rows.enumerated() {
                for h in 0..<c.heads {
                    for k in 0...query {
                        worst = max(worst, abs(row.scalars[h * (query + 1) + k] - maps[layer].scalars[(h * ids.count + query) * ids.count + k]))
                    }
                }
            }
            #expect(worst < 1e-4, "query \(query): \(worst)")
        }
        #expect(throws: AttentionError.self) { try model.attentions(ids, row: 23) }
        #expect(throws: AttentionError.self) { try model.attentions(ids, row: -1) }
    }
}
