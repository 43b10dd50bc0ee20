"""No HTTP views: the app serves WebSockets only."""

urlpatterns = []
