def test_keys_create_prints_a_working_key_last(ready, config):
    from tests.helpers import make_app

    key = ready("keys", "create", "--name", "shop").stdout.strip().splitlines()[-1]
    app = make_app(config)
    response = app.test_client().get("/api/v1/items/x", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404  # authenticated; the item just does not exist
    listing = ready("keys", "list").output
    assert "shop" in listing and key not in listing
    ready("keys", "revoke", "1")
    assert "revoked" in ready("keys", "list").output
    assert "no key with id 9" in ready("keys", "revoke", "9", ok=False).output
