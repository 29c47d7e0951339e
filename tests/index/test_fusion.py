from ragtune.index.fusion import reciprocal_rank_fusion


def test_rrf_matches_hand_computed_scores() -> None:
    fused = reciprocal_rank_fusion({"dense": ["a", "b", "c"], "bm25": ["c", "a"]}, k=60)
    scores = {item: score for item, score, _ in fused}
    assert scores["a"] == 1 / 61 + 1 / 62
    assert scores["c"] == 1 / 63 + 1 / 61
    assert scores["b"] == 1 / 62
    assert [item for item, _, _ in fused] == ["a", "c", "b"]
    assert dict((item, ranks) for item, _, ranks in fused)["c"] == {"dense": 3, "bm25": 1}


def test_rrf_of_one_list_keeps_its_order() -> None:
    assert [i for i, _, _ in reciprocal_rank_fusion({"bm25": ["x", "y", "z"]})] == ["x", "y", "z"]
