from django.urls import path

from apps.users import views

app_name = "users"

urlpatterns = [
    path("users", views.UserCollectionView.as_view(), name="collection"),
    path("users/login", views.LoginView.as_view(), name="login"),
    path("users/token/refresh", views.TokenRefreshView.as_view(), name="refresh"),
    path("users/logout", views.LogoutView.as_view(), name="logout"),
    path("users/logout-all", views.LogoutAllView.as_view(), name="logout-all"),
    path("users/<uuid:user_id>", views.UserDetailView.as_view(), name="detail"),
]
