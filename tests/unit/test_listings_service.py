"""The listing and seller services over in-memory stores: what an update changes, what a
missing listing or seller answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailflow.schemas import ListingIn, SellerIn
from mailflow.services import listings, sellers
from mailflow.services.errors import NotFound
from mailflow.store.listings import Listing
from tests.fakes_reads import FakeListings, FakeSellers, context
from tests.support import MovableClock

BEFORE = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
LAMP = Listing(7, "LAMP-1", "Lampe Art déco", 3, True, BEFORE)


class TestUpdateListing:
    def setup_method(self) -> None:
        self.clock = MovableClock()
        self.store = FakeListings(LAMP)
        self.ctx = context(clock=self.clock, listings=self.store)

    def test_stock_alone_leaves_the_listing_on_sale(self) -> None:
        shown = listings.update_listing(self.ctx, 7, "LAMP-1", ListingIn(stock=10))
        assert (shown["stock"], shown["active"]) == (10, True)
        assert shown["updated_at"] == self.clock.now
        assert self.store.get(7, "LAMP-1") == Listing(
            7, "LAMP-1", "Lampe Art déco", 10, True, self.clock.now
        )

    def test_taking_it_off_sale_keeps_the_stock(self) -> None:
        shown = listings.update_listing(self.ctx, 7, "LAMP-1", ListingIn(active=False))
        assert (shown["stock"], shown["active"]) == (3, False)

    def test_null_stock_means_no_count(self) -> None:
        shown = listings.update_listing(
            self.ctx, 7, "LAMP-1", ListingIn.model_validate({"stock": None})
        )
        assert shown["stock"] is None

    def test_an_empty_update_only_touches_the_time(self) -> None:
        self.clock.advance(hours=1)
        shown = listings.update_listing(self.ctx, 7, "LAMP-1", ListingIn())
        assert (shown["stock"], shown["active"], shown["updated_at"]) == (3, True, self.clock.now)

    @pytest.mark.parametrize(("seller_id", "sku"), [(7, "LAMP-2"), (8, "LAMP-1")])
    def test_another_sellers_or_unknown_sku_is_not_found(self, seller_id: int, sku: str) -> None:
        with pytest.raises(NotFound, match=f"seller {seller_id} has no listing '{sku}'"):
            listings.update_listing(self.ctx, seller_id, sku, ListingIn(stock=1))
        with pytest.raises(NotFound):
            listings.get_listing(self.ctx, seller_id, sku)
        assert self.store.get(7, "LAMP-1") == LAMP


class TestSellers:
    def test_a_created_seller_is_found_by_its_id(self) -> None:
        ctx = context(sellers=FakeSellers())
        made = sellers.create_seller(
            ctx, SellerIn(name="Brocante", email="b@shop.example", locale="en")
        )
        assert made == sellers.get_seller(ctx, made["id"])
        assert made["created_at"] == ctx.clock()
        assert made["suspended_until"] is None
        assert "tier" not in made  # the API's seller has no tier

    def test_an_unknown_seller_is_not_found(self) -> None:
        with pytest.raises(NotFound, match="no seller 4"):
            sellers.get_seller(context(), 4)
