from ragtune.index.fusion import convex_combination, min_max, reciprocal_rank_fusion


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


def test_convex_combination_weights_min_max_normalised_scores() -> None:
    lists = {"dense": [("a", 0.9), ("b", 0.7), ("c", 0.5)], "bm25": [("c", 12.0), ("a", 4.0)]}
    fused = convex_combination(lists, {"dense": 0.5, "bm25": 0.5})
    scores = {item: score for item, score, _ in fused}
    assert scores["a"] == 0.5 * 1.0 + 0.5 * 0.0
    assert abs(scores["b"] - 0.5 * 0.5) < 1e-9, "missing from bm25: that list's floor, 0"
    assert scores["c"] == 0.5 * 0.0 + 0.5 * 1.0
    assert dict((item, ranks) for item, _, ranks in fused)["c"] == {"dense": 3, "bm25": 1}


def test_alpha_moves_the_ranking_between_the_two_lists() -> None:
    lists = {"dense": [("a", 0.9), ("b", 0.2)], "bm25": [("b", 10.0), ("a", 1.0)]}
    assert convex_combination(lists, {"dense": 0.8, "bm25": 0.2})[0][0] == "a"
    assert convex_combination(lists, {"dense": 0.2, "bm25": 0.8})[0][0] == "b"


def test_min_max_of_equal_scores_is_one() -> None:
    assert min_max([3.0, 3.0]) == [1.0, 1.0]
    assert min_max([]) == []
