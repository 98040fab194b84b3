import Foundation

extension Reference {
    /// The gradients of the query, key, value and bias (in the bias's own, possibly broadcast, layout)
    /// for ∂L/∂O `dO`, in Double, from the forward recomputed with its weights: the oracle the tiled
    /// backward is tested against. See ``scaledDotProductAttentionBackward(query:key:value:outputGradient:mask:bias:scale:forward:options:)``.
    static func attentionBackward<Scalar>(_ problem: AttentionProblem<Scalar>, outputGradient dO: [Double])
        -> (query: [Double], key: [Double], value: [Double], bias: [Double]) {
        let s = problem.shape
        let recomputed = Reference.attention(problem, keepWeights: true)
        let p = recomputed.weights ?? []
        let q = problem.query.map(\.doubleValue), k = problem.key.map(\.doubleValue), v = problem.value.map(\.doubleValue)
        var dQ = [Double](repeating: 0, count: q.count), dK = [Double](repeating: 0, count: k.count)
        var dV = [Double](repeating: 0, count: v.count)
        var dBias = [Double](repeating: 0, count: problem.bias?.scalars.count ?? 0)
        var dS = [Double](repeating: 0, count: s.Nk)

        for b in 0..<s.B {
            for h in 0..<s.Hq {
                let g = h / s.groupSize
                for i in 0..<s.Nq {
                    let row = (b * s.Hq + h) * s.Nq + i
                    let qRow = row * s.D, oRow = row * s.Dv
                    // D_i = rowsum(P ⊙ dP) = dO_i · O_i.
                    var delta = 0.0
                    for c in 0..<s.Dv { delta += dO[oRow + c] * recomputed.output[oRow + c] }
                    for j in 0..<s.Nk {
                        let pij = p[row * s.Nk + j]
                        guard pij != 0 else { dS[j] = 0; continue }
                        let vRow = ((b * s.Hkv + g) * s.Nk + j) * s.Dv
                        // dP_ij = dO_i · V_j;  dV_j += P_ij dO_i.
                        var dP = 0.0
                        for c in 0..<s.Dv {
                            dP += dO[oRow + c] * v[vRow + c]
                            dV[vRow + c] += pij * dO[oRow + c]
                        }
                        dS[j] = pij * (dP - delta)
                    }
                    for j in 0..<s.Nk where dS[j] != 0 {
                        let kRow = ((b * s.Hkv + g) * s.Nk + j) * s.D
                        for c in 0..<s.D {
                            dQ[qRow + c] += problem.scale * dS[j] * k[kRow + c]
                            dK[kRow + c] += problem.scale * dS[j] * q[qRow + c]
                        }
                        if let broadcast = problem.bias {
                            // Broadcast strides are the bias's own strides, 0 where it repeats: summing
                            // into that index sums over the broadcast dimensions.
                            let st = broadcast.strides
                            let index: Int = b * st.0 + h * st.1 + i * st.2 + j * st.3
                            dBias[index] += dS[j]
                        }
                    }
                }
            }
        }
        return (dQ, dK, dV, dBias)
    }
}
